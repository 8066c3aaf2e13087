"""ccod-fs: multi-tenant contact center core on FreeSWITCH."""
