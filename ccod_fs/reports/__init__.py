"""Contact-center reports as tested SQL, shared by the wallboard, the API and analysts."""

from ccod_fs.reports.library import Reports, SlPolicy, load_sql

__all__ = ["Reports", "SlPolicy", "load_sql"]
