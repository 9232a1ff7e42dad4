"""Several processes of one run: they meet before JAX starts, and each runs JAX in a supervised
child process, so that a missing, duplicated, mismatched or dead process ends every process with
one line instead of the JAX runtime's abort.

  channel.py     JSON lines over TCP
  rendezvous.py  the meeting before JAX starts: ids, counts, options and refusals agreed, JAX's
                 coordinator port chosen
  link.py        during the run: heartbeats, and each process's end relayed to the others
  supervisor.py  the process the user started: meets the others, runs the training in a child,
                 turns its aborts and the peers' ends into one line

See docs/devices.md ("When a process is missing, duplicated or dies").
"""
