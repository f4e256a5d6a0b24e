from cartera_common.migrations import run_env
from scoring.tables import metadata

run_env(metadata)
