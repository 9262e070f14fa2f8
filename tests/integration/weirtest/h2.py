"""weirtest.h2 — a small blocking HTTP/2 (h2c, prior knowledge) client on
python3-h2, and the gRPC wire format (1 byte compressed flag, 4 bytes
big-endian length, the message), for tests of h2 and gRPC answers.

    c = H2Client(port)
    sid = c.request("POST", "/weir.Echo/Unary", grpc_headers(), grpc_frame(b"hi"))
    r = c.wait(sid)        # r.status, r.headers, r.data, r.trailers, r.ended
    grpc_messages(r.data)  # [b"hi"]

Every wait is bounded in time; received DATA is acknowledged as it is read
unless auto_ack=False (then ack() returns the credit: a client that does
not read).
"""
import socket
import struct
import time

import h2.config
import h2.connection
import h2.events
import h2.settings


class H2Response:
    def __init__(self):
        self.headers = {}
        self.trailers = {}
        self.data = b""
        self.ended = False
        self.reset = None  # RST_STREAM error code
        self.unacked = 0

    @property
    def status(self):
        return int(self.headers.get(":status", 0))


class H2Client:
    def __init__(self, port, host="127.0.0.1", auto_ack=True, settings=None, timeout=10.0,
                 trickle=False):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.timeout = timeout
        self.auto_ack = auto_ack
        self.conn = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
        self.conn.initiate_connection()
        if settings:
            self.conn.update_settings(settings)
        self.streams = {}
        self.goaway = None
        self.closed = False
        if trickle:  # the preface a few bytes at a time
            data = self.conn.data_to_send()
            for i in range(0, len(data), 5):
                self.sock.sendall(data[i:i + 5])
                time.sleep(0.01)
        self.flush()

    def flush(self):
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def request(self, method, path, headers=(), body=None, end=True, authority="pod"):
        sid = self.conn.get_next_available_stream_id()
        self.streams[sid] = H2Response()
        hdrs = [(":method", method), (":scheme", "http"), (":authority", authority),
                (":path", path)] + list(headers)
        self.conn.send_headers(sid, hdrs, end_stream=end and not body)
        if body:
            self.send(sid, body, end=end)
        self.flush()
        return sid

    def send(self, sid, data, end=False):
        """Send data on sid, waiting for flow-control credit as needed."""
        while data:
            room = min(self.conn.local_flow_control_window(sid), self.conn.max_outbound_frame_size)
            if room <= 0:
                if not self.pump(self.timeout):
                    raise TimeoutError("no flow-control credit for stream %d" % sid)
                continue
            self.conn.send_data(sid, data[:room])
            data = data[room:]
            self.flush()
        if end:
            self.conn.end_stream(sid)
            self.flush()

    def end(self, sid):
        self.conn.end_stream(sid)
        self.flush()

    def ack(self, sid):
        r = self.streams[sid]
        if r.unacked:
            self.conn.acknowledge_received_data(r.unacked, sid)
            r.unacked = 0
            self.flush()

    def pump(self, timeout):
        """Read once (up to timeout s) and handle the events; False on timeout/EOF."""
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            return False
        except OSError:
            data = b""
        if not data:
            self.closed = True
            return False
        for ev in self.conn.receive_data(data):
            self._event(ev)
        self.flush()
        return True

    def _event(self, ev):
        r = self.streams.get(getattr(ev, "stream_id", None))
        if isinstance(ev, h2.events.ResponseReceived):
            r.headers = dict(ev.headers)
        elif isinstance(ev, h2.events.TrailersReceived):
            r.trailers = dict(ev.headers)
        elif isinstance(ev, h2.events.DataReceived):
            r.data += ev.data
            if self.auto_ack:
                self.conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            else:
                r.unacked += ev.flow_controlled_length
        elif isinstance(ev, h2.events.StreamEnded):
            r.ended = True
        elif isinstance(ev, h2.events.StreamReset):
            if r:
                r.reset = ev.error_code
                r.ended = True
        elif isinstance(ev, h2.events.ConnectionTerminated):
            self.goaway = ev.error_code

    def wait_for(self, pred, timeout=None):
        """Pump until pred() is true (True) or timeout / EOF (False)."""
        end = time.time() + (timeout or self.timeout)
        while not pred():
            left = end - time.time()
            if left <= 0 or self.closed:
                return False
            self.pump(left)
        return True

    def wait(self, sid, timeout=None):
        """The response of sid once it ended (or what came before the timeout)."""
        r = self.streams[sid]
        self.wait_for(lambda: r.ended, timeout)
        return r


def grpc_frame(msg, compressed=False):
    return struct.pack(">BI", 1 if compressed else 0, len(msg)) + msg


def grpc_messages(data):
    """Split a gRPC body into its messages; raises ValueError if cut short."""
    out = []
    while data:
        if len(data) < 5:
            raise ValueError("cut prefix")
        flag, n = struct.unpack(">BI", data[:5])
        if len(data) < 5 + n:
            raise ValueError("cut message")
        out.append(data[5:5 + n])
        data = data[5 + n:]
    return out


def grpc_headers(extra=()):
    return [("content-type", "application/grpc"), ("te", "trailers")] + list(extra)
