"""The simulator transport: a WhatsApp stand-in for demos, load tests and client developers.

Same interface and state machine as neonize, no network. What it does:

- connection.py: a session without a saved identity shows a QR (`2@ref,noise,identity,adv` like
  WhatsApp's) and a new one every 20 s. With `ZAPHUB_SIM_AUTOPAIR` (default on) it pairs by itself
  after `ZAPHUB_SIM_PAIR_DELAY` seconds; otherwise it waits in `qr_pending` until `pair_code` is
  asked, and pairs `ZAPHUB_SIM_PAIR_DELAY` seconds after handing out the code. Pairing creates a
  random identity (`55119<8 digits>@s.whatsapp.net`, a `<15 digits>@lid` LID; with `pair_code`, the
  given phone) which becomes the session's auth_data, so a restart or another host resumes the same
  JID without a QR. Logout forgets the identity (auth_data is deleted) and reports `logged_out`.
- messages.py: a send is appended to the delivered log (network.py). A recipient that is another
  simulated session, on any host process, gets it over the simulated network (wire.py, NATS): at
  once when online, else when it connects; its delivery and read receipts come back the same way.
  Any other number is a contact that is always online: a delivery receipt after ~0.5 s, a read
  receipt after ~1.5 s. Recipients whose number starts with `999` are not on WhatsApp: a permanent
  error.
- wire.py: the network between host processes: linked numbers in the `zaphub_sim_numbers` bucket,
  frames pending per number in the `ZAPHUB_SIM` work-queue stream, one durable consumer per number.
- faults.py: slow, failing and dropping sessions, process-wide from `ZAPHUB_SIM_FAULTS` or per
  session from the `fault` host op.

Timers are `loop.call_later` handles, never a task per session, so one process holds many thousands.
"""

from zaphub_session_host.transport.sim.faults import SimFaults, SimFaultSpecError
from zaphub_session_host.transport.sim.network import SimTransport

__all__ = ["SimFaultSpecError", "SimFaults", "SimTransport"]
