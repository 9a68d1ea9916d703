"""FAISS's CodePacker objects (index.get_CodePacker()): where the code of
vector i sits in an index's code storage, so that a code can be read or
written in place (FAISS uses them to move codes between inverted lists).

CodePackerFlat: codes one after the other (nvec = 1 code a "block").
CodePackerPQ4: the 4-bit fast-scan blocks of bbs vectors (nvec = bbs),
laid out as src/quant/fastscan.h describes: for each pair of
sub-quantizers and each group of 32 vectors 32 bytes; byte j < 16 holds
sub-quantizer 2p of vector perm(j) in its low nibble and of vector
perm(j) + 16 in its high nibble, byte 16 + j the same for sub-quantizer
2p + 1, perm = 0, 8, 1, 9, ..., 7, 15.  A flat code is FAISS's PQ code:
two 4-bit indices a byte, the even sub-quantizer in the low nibble.

Blocks are 2-d uint8 arrays (nblock, block_size), as FAISS's Python
wrapper wants them; offset counts vectors from the first block."""
import numpy as np

__all__ = ["CodePacker", "CodePackerFlat", "CodePackerPQ4"]


class CodePacker:
    code_size = 0
    nvec = 1
    block_size = 0

    def _check_block(self, block, offset, what):
        block = np.asarray(block)
        if block.dtype != np.uint8 or block.ndim != 2 or \
                block.shape[1] != self.block_size:
            raise ValueError(
                f"CodePacker.{what}: expected a uint8 array of shape "
                f"(nblock, {self.block_size}), got {block.dtype} "
                f"{block.shape}")
        offset = int(offset)
        if not 0 <= offset < block.shape[0] * self.nvec:
            raise ValueError(
                f"CodePacker.{what}: offset {offset} is outside the "
                f"{block.shape[0] * self.nvec} codes of these blocks")
        return block, offset

    def _check_code(self, x, what):
        x = np.asarray(x)
        if x.dtype != np.uint8 or x.shape != (self.code_size,):
            raise ValueError(f"CodePacker.{what}: expected a uint8 code of "
                             f"{self.code_size} bytes, got {x.dtype} "
                             f"{x.shape}")
        return x

    def pack_all(self, flat_codes, block):
        """Packs the nvec codes of flat_codes (nvec x code_size bytes)
        into the first block."""
        codes = np.asarray(flat_codes, dtype=np.uint8).reshape(
            -1, self.code_size)
        if codes.shape[0] != self.nvec:
            raise ValueError(f"CodePacker.pack_all: expected {self.nvec} "
                             f"codes, got {codes.shape[0]}")
        for i in range(self.nvec):
            self.pack_1(codes[i], i, block)

    def unpack_all(self, block):
        """The nvec codes of the first block (nvec x code_size)."""
        return np.stack([self.unpack_1(block, i) for i in range(self.nvec)])


class CodePackerFlat(CodePacker):
    def __init__(self, code_size):
        self.code_size = int(code_size)
        self.nvec = 1
        self.block_size = self.code_size

    def pack_1(self, x, offset, block):
        block, offset = self._check_block(block, offset, "pack_1")
        block[offset] = self._check_code(x, "pack_1")

    def unpack_1(self, block, offset):
        block, offset = self._check_block(block, offset, "unpack_1")
        return block[offset].copy()


class CodePackerPQ4(CodePacker):
    def __init__(self, nsq, bbs):
        nsq, bbs = int(nsq), int(bbs)
        if nsq <= 0 or bbs <= 0 or bbs % 32:
            raise ValueError(f"CodePackerPQ4: nsq must be > 0 and bbs a "
                             f"multiple of 32, got {nsq}, {bbs}")
        self.nsq = nsq
        self.nvec = bbs
        self.code_size = (nsq * 4 + 7) // 8
        self.block_size = (nsq + 1) // 2 * bbs

    def _addr(self, offset):
        """Byte address (in the flattened blocks) and nibble shift of
        every sub-quantizer of vector `offset`."""
        b, w = divmod(offset, self.nvec)
        g, u = divmod(w, 32)
        shift = 4 if u >= 16 else 0
        u &= 15
        j = 2 * u if u < 8 else 2 * (u - 8) + 1
        m = np.arange(self.nsq)
        addr = (b * self.block_size + (m // 2) * self.nvec + g * 32 +
                (m & 1) * 16 + j)
        return addr, shift

    def unpack_1(self, block, offset):
        block, offset = self._check_block(block, offset, "unpack_1")
        addr, shift = self._addr(offset)
        nib = (block.reshape(-1)[addr] >> shift) & 15
        code = np.zeros(self.code_size, dtype=np.uint8)
        np.bitwise_or.at(code, np.arange(self.nsq) // 2,
                         (nib << (4 * (np.arange(self.nsq) & 1))).astype(
                             np.uint8))
        return code

    def pack_1(self, x, offset, block):
        block, offset = self._check_block(block, offset, "pack_1")
        if not block.flags.c_contiguous or not block.flags.writeable:
            raise ValueError("CodePacker.pack_1: the blocks must be a "
                             "writable C-contiguous array")
        x = self._check_code(x, "pack_1")
        addr, shift = self._addr(offset)
        m = np.arange(self.nsq)
        nib = (x[m // 2] >> (4 * (m & 1))) & 15
        flat = block.reshape(-1)  # a view: block is C-contiguous 2-d
        keep = np.uint8(0xF0 if shift == 0 else 0x0F)
        flat[addr] = (flat[addr] & keep) | (nib << shift).astype(np.uint8)
