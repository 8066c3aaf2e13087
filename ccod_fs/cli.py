"""``ccod-fs``: one console entry point, a subcommand per service.

Each subcommand loads and validates its settings, configures logging once and
hands over to the service's ``run_*`` function; imports are lazy so one
service's dependencies never slow down another's start.
"""

from __future__ import annotations

import sys
from typing import Any

import click
from pydantic import ValidationError

from ccod_fs.logs import configure_logging


def _settings(cls: Any, **overrides: Any) -> Any:
    try:
        return cls(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        click.echo(f"invalid settings for {cls.__name__}:\n{exc}", err=True)
        sys.exit(2)


@click.group()
@click.option("--log-level", default="INFO", show_default=True)
@click.option("--log-json/--log-console", default=None, help="default: JSON unless stderr is a terminal")
def main(log_level: str, log_json: bool | None) -> None:
    """ccod-fs: multi-tenant contact center core on FreeSWITCH."""
    configure_logging(log_level, json=log_json)


@main.command()
def ingest() -> None:
    """ESL ingest for one FreeSWITCH node -> Kafka (CCOD_ESL__*, CCOD_KAFKA__*, CCOD_SPOOL_DIR)."""
    from ccod_fs.ingest.service import run_ingest
    from ccod_fs.settings import IngestSettings

    run_ingest(_settings(IngestSettings))


@main.command()
def sink() -> None:
    """Kafka -> ClickHouse sink (CCOD_KAFKA__*, CCOD_CLICKHOUSE__URL or embedded chDB)."""
    from ccod_fs.clickhouse.client import exit_process
    from ccod_fs.settings import SinkSettings
    from ccod_fs.sink.service import run_sink

    run_sink(_settings(SinkSettings))
    exit_process(0)  # embedded chDB can crash in its own shutdown after a clean stop


@main.command()
def migrate() -> None:
    """Apply ClickHouse migrations (idempotent; safe from two pods at once)."""
    from ccod_fs.clickhouse.client import exit_process
    from ccod_fs.settings import MigrateSettings
    from ccod_fs.sink.service import run_migrate

    run_migrate(_settings(MigrateSettings))
    exit_process(0)


@main.command()
@click.option("--out", "out_dir", type=click.Path(), default=None, help="default: schemas/events")
def schemas(out_dir: str | None) -> None:
    """Regenerate the event JSON Schemas from the models."""
    from pathlib import Path

    from ccod_fs.contract.schema_export import SCHEMA_DIR, write_schemas

    for path in write_schemas(Path(out_dir) if out_dir else SCHEMA_DIR):
        click.echo(str(path))


@main.command(
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True, "help_option_names": []}
)
@click.pass_context
def simulate(ctx: click.Context) -> None:
    """ESL simulator: serve simulated FreeSWITCH nodes (see --help of the simulator)."""
    from ccod_fs.simulator.cli import simulate_main

    sys.exit(simulate_main(ctx.args))


@main.command()
@click.option("--calls", default=200, show_default=True, help="simulated calls")
@click.option("--seed", default=7, show_default=True)
@click.option("--data-dir", default=None, help="chDB data dir (default: a temp dir)")
def demo(calls: int, seed: int, data_dir: str | None) -> None:
    """Whole pipeline in one process on embedded defaults; prints the report from ClickHouse."""
    from ccod_fs.clickhouse.client import exit_process
    from ccod_fs.demo import run_demo

    run_demo(calls=calls, seed=seed, data_dir=data_dir)
    exit_process(0)

if __name__ == "__main__":
    main()
