"""The core's executors: inline (debugging) and local (a process pool, the default)."""
from esomp_core import hookimpl
from esomp_core.engine import InlineExecutor, LocalExecutor
from esomp_core.model import Executor


@hookimpl
def register_executors(register):
    register(Executor("inline", InlineExecutor, "every job in the engine's own process, one at a time"))
    register(Executor("local", LocalExecutor, "a pool of worker processes on this machine (default: one per core)"))
