"""Real WhatsApp through neonize (whatsmeow): one `NewAClient` per session, many in one process.

- transport.py: the process-wide part (store directory, media HTTP client, worker threads).
- connection.py: one session's client and its lifecycle (connect, reconnect, pair, logout, close);
  whatsmeow's events are mapped onto `ConnectionEvents` by events.py.
- store_snapshot.py: each session's whatsmeow store is its own SQLite file,
  `<data_dir>/neonize/<tenant>/<session>.sqlite3`, seeded from auth_data on connect; auth_data is a
  consistent snapshot of that file (sqlite3 backup API in a thread).
- messages.py: sends build the protobuf message, fetch and upload media (media.py) and check
  `is_on_whatsapp` for user JIDs (cached), mapping failures to the named errors (errors.py).
- gate.py: Go clients start and stop one at a time: neonize's table of them has no lock, and
  overlapping starts crash the process.

neonize 0.5.2's `send_message` does not pass whatsmeow's `SendRequestExtra.ID`, so WhatsApp assigns the
id and `send` returns it; the runner keys receipts by the returned id, so they still match.

Blocking calls: every neonize call is an FFI call that neonize itself runs through `asyncio.to_thread`;
the Go `Neonize()` loop holds one worker thread per live client for its whole life, so `start()` gives
the loop a default executor sized for the host's sessions.
"""

from zaphub_session_host.transport.neonize.transport import NeonizeTransport

__all__ = ["NeonizeTransport"]
