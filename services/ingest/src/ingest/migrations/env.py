from cartera_common.migrations import run_env
from ingest.tables import metadata

run_env(metadata)
