"""sg_jax.interrupts: a Ctrl-C swallowed where Python cannot propagate it is raised again."""

import gc
import signal
import subprocess
import sys
import textwrap

import pytest


@pytest.mark.skipif(not hasattr(signal, "SIGINT"), reason="needs SIGINT")
def test_an_interrupt_swallowed_by_a_gc_callback_is_raised_at_the_next_check_without_a_traceback():
    code = textwrap.dedent("""
        import gc, os, signal, sys, time
        import sg_jax.interrupts as interrupts
        interrupts.install()
        def callback(phase, info):
            if phase == "start" and not interrupts._pending:
                os.kill(os.getpid(), signal.SIGINT)   # arrives while the interpreter runs this callback
                deadline = time.monotonic() + 10      # however late the signal is delivered (a loaded machine)
                while time.monotonic() < deadline:
                    pass
        gc.callbacks.append(callback)
        gc.collect()                                  # the KeyboardInterrupt is swallowed here
        gc.callbacks.remove(callback)
        print("carried on", flush=True)
        try:
            interrupts.check()
        except KeyboardInterrupt:
            print("raised at the check", flush=True)
    """)
    # A suite started in the background by a shell ignores SIGINT, and the child would inherit that
    # (install() then leaves SIGINT ignored): with a handler here instead, the child starts with the
    # default disposition, as from a terminal (a handler does not survive exec).
    ignored = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    finally:
        signal.signal(signal.SIGINT, ignored)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["carried", "on", "raised", "at", "the", "check"]
    assert "Traceback" not in proc.stderr and "Exception ignored" not in proc.stderr, proc.stderr


def test_check_never_raises_without_an_interrupt():
    import sg_jax.interrupts as interrupts

    gc.collect()
    interrupts.check()
