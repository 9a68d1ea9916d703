"""FAISS's IOReader / IOWriter objects (faiss/impl/io.h) for vecdex.

FAISS code passes these where a file name goes: write_index(index, writer),
read_index(reader), write_VectorTransform(vt, writer) ...  The readers and
writers are Python objects here; the index bytes are made and parsed by
vecdex's C serializer (serialize_index / deserialize_index), so a stream
from a callback is checked exactly as a file is (every count against the
bytes present before allocating; truncated or hostile data -> RuntimeError).

Reading a stream: vecdex's parser needs the whole record in memory, and a
stream (a pipe) may never signal its end while the writer waits for the
reader.  So the reader pulls chunks and, each time the source returns fewer
bytes than asked (it has nothing more for now, or it ended), tries to parse
what it has; a truncated record fails cleanly and more is pulled.  FAISS's
records are self-delimiting, so no strict prefix of one parses.  Known
difference from FAISS: the reader may consume bytes past the record (a
stream holding several records one after another is not supported), and a
pipe that delivers a large record in many small pieces is parsed once per
piece.
"""
import numpy as np

from . import _vecdex

__all__ = ["IOReader", "IOWriter", "PyCallbackIOReader", "PyCallbackIOWriter",
           "BufferedIOReader", "BufferedIOWriter", "FileIOReader",
           "FileIOWriter", "VectorIOReader", "VectorIOWriter", "ByteVector"]

_DEFAULT_BS = 1 << 20   # FAISS's default chunk size for the callbacks
_NULL = b"null"         # FAISS's fourcc for a null index


class ByteVector:
    """FAISS's std::vector<uint8_t> (VectorIOWriter.data): growable bytes
    that numpy reads (vector_to_array) and copy_array_to_vector fills."""

    def __init__(self, data=b""):
        self._b = bytearray(data)

    def __array__(self, dtype=None, copy=None):
        a = np.frombuffer(bytes(self._b), dtype=np.uint8)
        return a if dtype is None else a.astype(dtype)

    def __len__(self):
        return len(self._b)

    def size(self):
        return len(self._b)

    def at(self, i):
        return self._b[i]

    def push_back(self, x):
        self._b.append(int(x))

    def resize(self, n, value=0):
        if n < 0:
            raise ValueError("resize: n=%d is negative" % n)
        del self._b[n:]
        self._b.extend(bytes([value]) * (n - len(self._b)))

    def clear(self):
        self._b.clear()

    def swap(self, other):
        if not isinstance(other, ByteVector):
            raise TypeError("swap: expected a ByteVector, got "
                            + type(other).__name__)
        self._b, other._b = other._b, self._b

    def _vdx_assign(self, a):
        """copy_array_to_vector(a, v): v becomes a copy of a's bytes (as
        FAISS resizes the vector to a's size)."""
        a = np.ascontiguousarray(a)
        if a.dtype != np.uint8:
            if a.size and (a.min() < 0 or a.max() > 255):
                raise ValueError("copy_array_to_vector: values outside "
                                 "0..255 for a uint8 vector")
            a = a.astype(np.uint8)
        self._b = bytearray(a.tobytes())


def _as_bytes_view(ptr, nbytes, who):
    """The first nbytes of array ptr (swig_ptr is the identity in vecdex,
    so FAISS's reader(swig_ptr(y), size, n) passes the array itself)."""
    mv = memoryview(ptr).cast("B")
    if nbytes > len(mv):
        raise ValueError("%s: %d bytes asked for a buffer of %d"
                         % (who, nbytes, len(mv)))
    return mv


def _count(size, nitems, who):
    size, nitems = int(size), int(nitems)
    if size < 0 or nitems < 0:
        raise ValueError("%s: size=%d, nitems=%d must be >= 0"
                         % (who, size, nitems))
    return size, nitems


class IOWriter:
    """Base of the writers: write(bytes) and FAISS's writer(ptr, size,
    nitems) call."""
    name = "IOWriter"

    def write(self, data):
        raise NotImplementedError(self.name + ".write")

    def flush(self):
        pass

    def __call__(self, ptr, size, nitems):
        size, nitems = _count(size, nitems, self.name)
        mv = _as_bytes_view(ptr, size * nitems, self.name)
        self.write(bytes(mv[:size * nitems]))
        return nitems


class IOReader:
    """Base of the readers.  read_some(n): up to n bytes, fewer only when
    the source has no more for now (or ended: b'')."""
    name = "IOReader"

    def read_some(self, n):
        raise NotImplementedError(self.name + ".read_some")

    def read(self, n):
        """Exactly n bytes, or fewer at the end of the source."""
        out = bytearray()
        while len(out) < n:
            chunk = self.read_some(n - len(out))
            if not chunk:
                break
            out += chunk
        return bytes(out)

    def __call__(self, ptr, size, nitems):
        size, nitems = _count(size, nitems, self.name)
        mv = _as_bytes_view(ptr, size * nitems, self.name)
        data = self.read(size * nitems)
        mv[:len(data)] = data
        return len(data) // size if size else 0


class PyCallbackIOWriter(IOWriter):
    """Calls callback(bytes) with pieces of at most bs bytes."""
    name = "PyCallbackIOWriter"

    def __init__(self, callback, bs=_DEFAULT_BS):
        if int(bs) <= 0:
            raise ValueError("PyCallbackIOWriter: bs=%d must be > 0" % bs)
        self.callback = callback
        self.bs = int(bs)

    def write(self, data):
        if not callable(self.callback):
            raise TypeError("PyCallbackIOWriter: the callback (%s) is not "
                            "callable" % type(self.callback).__name__)
        mv = memoryview(data)
        for i in range(0, len(mv), self.bs):
            self.callback(bytes(mv[i:i + self.bs]))


class PyCallbackIOReader(IOReader):
    """Calls callback(n) for pieces of at most bs bytes; it returns bytes,
    at most n of them, b'' at the end."""
    name = "PyCallbackIOReader"

    def __init__(self, callback, bs=_DEFAULT_BS):
        if int(bs) <= 0:
            raise ValueError("PyCallbackIOReader: bs=%d must be > 0" % bs)
        self.callback = callback
        self.bs = int(bs)

    def read_some(self, n):
        if not callable(self.callback):
            raise TypeError("PyCallbackIOReader: the callback (%s) is not "
                            "callable" % type(self.callback).__name__)
        out = bytearray()
        while len(out) < n:
            ri = min(self.bs, n - len(out))
            r = self.callback(ri)
            if not isinstance(r, (bytes, bytearray, memoryview)):
                raise RuntimeError("PyCallbackIOReader: the read callback "
                                   "returned %s, not bytes"
                                   % type(r).__name__)
            if len(r) > ri:
                raise RuntimeError("PyCallbackIOReader: the read callback "
                                   "returned %d bytes (asked %d)"
                                   % (len(r), ri))
            out += r
            if len(r) < ri:     # nothing more for now, or the end
                break
        return bytes(out)


class BufferedIOWriter(IOWriter):
    """Collects writes into blocks of bsz bytes for the writer under it;
    flushed at the end of each write_index and when deleted."""
    name = "BufferedIOWriter"

    def __init__(self, writer, bsz=_DEFAULT_BS):
        if not isinstance(writer, IOWriter):
            raise TypeError("BufferedIOWriter: expected an IOWriter, got "
                            + type(writer).__name__)
        if int(bsz) <= 0:
            raise ValueError("BufferedIOWriter: bsz=%d must be > 0" % bsz)
        self.writer = writer
        self.bsz = int(bsz)
        self._buf = bytearray()

    def write(self, data):
        self._buf += data
        while len(self._buf) >= self.bsz:
            self.writer.write(bytes(self._buf[:self.bsz]))
            del self._buf[:self.bsz]

    def flush(self):
        if self._buf:
            self.writer.write(bytes(self._buf))
            self._buf.clear()
        self.writer.flush()

    def __del__(self):
        try:
            self.flush()
        except Exception:  # noqa: BLE001  (nothing to report to in __del__)
            pass


class BufferedIOReader(IOReader):
    """Reads the reader under it in blocks of bsz bytes."""
    name = "BufferedIOReader"

    def __init__(self, reader, bsz=_DEFAULT_BS):
        if not isinstance(reader, IOReader):
            raise TypeError("BufferedIOReader: expected an IOReader, got "
                            + type(reader).__name__)
        if int(bsz) <= 0:
            raise ValueError("BufferedIOReader: bsz=%d must be > 0" % bsz)
        self.reader = reader
        self.bsz = int(bsz)
        self._buf = b""

    def read_some(self, n):
        out = bytearray()
        while len(out) < n:
            if not self._buf:
                self._buf = self.reader.read_some(self.bsz)
                short = len(self._buf) < self.bsz
            else:
                short = False
            take = self._buf[:n - len(out)]
            self._buf = self._buf[len(take):]
            out += take
            if short:           # the source had no more for now
                break
        return bytes(out)


class FileIOWriter(IOWriter):
    name = "FileIOWriter"

    def __init__(self, fname):
        self.fname = fname
        self._f = open(fname, "wb")

    def write(self, data):
        self._f.write(data)

    def flush(self):
        self._f.flush()

    def __del__(self):
        f = getattr(self, "_f", None)
        if f is not None:
            f.close()


class FileIOReader(IOReader):
    name = "FileIOReader"

    def __init__(self, fname):
        self.fname = fname
        self._f = open(fname, "rb")

    def read_some(self, n):
        return self._f.read(n)

    def __del__(self):
        f = getattr(self, "_f", None)
        if f is not None:
            f.close()


class VectorIOWriter(IOWriter):
    """Appends to .data (a ByteVector)."""
    name = "VectorIOWriter"

    def __init__(self):
        self.data = ByteVector()

    def write(self, data):
        self.data._b += data


class VectorIOReader(IOReader):
    """Reads .data (a ByteVector) from offset rp."""
    name = "VectorIOReader"

    def __init__(self):
        self.data = ByteVector()
        self.rp = 0

    def read_some(self, n):
        out = bytes(self.data._b[self.rp:self.rp + n])
        self.rp += len(out)
        return out


def write_to(obj_bytes, writer):
    """Writes serialized bytes through an IOWriter, then flushes it."""
    writer.write(bytes(obj_bytes))
    writer.flush()


def read_from(reader, parse):
    """Pulls the record from reader and returns parse(bytes) (see the
    module note for when parsing is tried)."""
    if isinstance(reader, VectorIOReader):
        data = bytes(reader.data._b[reader.rp:])
        reader.rp = len(reader.data._b)
        return _parse(parse, data, reader)
    buf = bytearray()
    while True:
        chunk = reader.read_some(_DEFAULT_BS)
        if not chunk:
            return _parse(parse, bytes(buf), reader)
        buf += chunk
        if len(chunk) < _DEFAULT_BS:
            try:
                return parse(bytes(buf))
            except RuntimeError as e:
                if "truncated" not in str(e):
                    raise RuntimeError("%s: %s" % (reader.name, e)) from e
                # truncated so far: pull more


def _parse(parse, data, reader):
    try:
        return parse(data)
    except RuntimeError as e:
        raise RuntimeError("%s: %s (%d bytes read)"
                           % (reader.name, e, len(data))) from e


def parse_index(data, io_flags=0):
    if data == _NULL:
        return None
    return _vecdex.deserialize_index(np.frombuffer(data, dtype=np.uint8),
                                     io_flags)


def serialize_index_or_null(index):
    if index is None:
        return _NULL
    return _vecdex.serialize_index(index).tobytes()
