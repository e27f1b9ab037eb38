//! Bounds-checked access to a guest's linear memory, and the stack frame view
//! through which every `gojs` import reads its arguments.
//!
//! Go passes import arguments on its own stack in linear memory: the import
//! receives the stack pointer `sp` and finds argument *n* at a fixed offset
//! after it (8 bytes per word, slices as pointer/length/capacity, strings as
//! pointer/length). [`Frame`] turns those offsets into typed reads and writes
//! once, so no handler does pointer arithmetic, and every guest-supplied
//! address and length is checked before use.

/// A guest address or length that does not fit in linear memory.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "out-of-bounds guest memory access: {len} bytes at address {addr:#x} (memory is {size} bytes)"
)]
pub struct MemoryError {
    /// The address the guest gave.
    pub addr: u64,
    /// The length it asked for.
    pub len: u64,
    /// The size of linear memory at the time.
    pub size: usize,
}

/// A view of linear memory for the duration of one host operation. It
/// borrows the memory, so it cannot be held across a call back into the
/// guest (which may grow and move the memory).
pub struct GuestMemory<'a> {
    bytes: &'a mut [u8],
}

impl<'a> GuestMemory<'a> {
    /// Wraps the bytes of linear memory.
    pub fn new(bytes: &'a mut [u8]) -> GuestMemory<'a> {
        GuestMemory { bytes }
    }

    /// Size of linear memory in bytes.
    pub fn size(&self) -> usize {
        self.bytes.len()
    }

    fn range(&self, addr: u64, len: u64) -> Result<std::ops::Range<usize>, MemoryError> {
        let err = || MemoryError {
            addr,
            len,
            size: self.bytes.len(),
        };
        let end = addr.checked_add(len).ok_or_else(err)?;
        if end > self.bytes.len() as u64 {
            return Err(err());
        }
        Ok(addr as usize..end as usize)
    }

    /// The `len` bytes at `addr`.
    pub fn slice(&self, addr: u64, len: u64) -> Result<&[u8], MemoryError> {
        let r = self.range(addr, len)?;
        Ok(&self.bytes[r])
    }

    /// The `len` bytes at `addr`, writable.
    pub fn slice_mut(&mut self, addr: u64, len: u64) -> Result<&mut [u8], MemoryError> {
        let r = self.range(addr, len)?;
        Ok(&mut self.bytes[r])
    }

    fn array<const N: usize>(&self, addr: u64) -> Result<[u8; N], MemoryError> {
        let mut out = [0; N];
        out.copy_from_slice(self.slice(addr, N as u64)?);
        Ok(out)
    }

    /// A little-endian `u32` at `addr`.
    pub fn read_u32(&self, addr: u64) -> Result<u32, MemoryError> {
        self.array(addr).map(u32::from_le_bytes)
    }

    /// A little-endian `i32` at `addr`.
    pub fn read_i32(&self, addr: u64) -> Result<i32, MemoryError> {
        self.array(addr).map(i32::from_le_bytes)
    }

    /// A little-endian `u64` at `addr`.
    pub fn read_u64(&self, addr: u64) -> Result<u64, MemoryError> {
        self.array(addr).map(u64::from_le_bytes)
    }

    /// A little-endian `i64` at `addr`.
    pub fn read_i64(&self, addr: u64) -> Result<i64, MemoryError> {
        self.array(addr).map(i64::from_le_bytes)
    }

    /// Writes `bytes` at `addr`.
    pub fn write(&mut self, addr: u64, bytes: &[u8]) -> Result<(), MemoryError> {
        self.slice_mut(addr, bytes.len() as u64)?
            .copy_from_slice(bytes);
        Ok(())
    }

    /// Writes a little-endian `u32` at `addr`.
    pub fn write_u32(&mut self, addr: u64, v: u32) -> Result<(), MemoryError> {
        self.write(addr, &v.to_le_bytes())
    }

    /// Writes a little-endian `u64` at `addr`.
    pub fn write_u64(&mut self, addr: u64, v: u64) -> Result<(), MemoryError> {
        self.write(addr, &v.to_le_bytes())
    }

    /// Writes one byte at `addr`.
    pub fn write_u8(&mut self, addr: u64, v: u8) -> Result<(), MemoryError> {
        self.write(addr, &[v])
    }
}

/// A Go stack frame of an import call: the arguments and results at fixed
/// offsets after `sp`. The first argument is at `sp + 8`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame {
    sp: u64,
}

impl Frame {
    /// The frame at stack pointer `sp` (Go passes it as an `i32`; it is an
    /// unsigned address).
    pub fn new(sp: i32) -> Frame {
        Frame {
            sp: u64::from(sp as u32),
        }
    }

    fn at(&self, offset: u64) -> u64 {
        self.sp + offset
    }

    /// A signed 64-bit word (`int`, `int64`, `uintptr`).
    pub fn i64(&self, mem: &GuestMemory<'_>, offset: u64) -> Result<i64, MemoryError> {
        mem.read_i64(self.at(offset))
    }

    /// A signed 32-bit word (`int32`).
    pub fn i32(&self, mem: &GuestMemory<'_>, offset: u64) -> Result<i32, MemoryError> {
        mem.read_i32(self.at(offset))
    }

    /// A raw 64-bit word (a `syscall/js.ref`).
    pub fn u64(&self, mem: &GuestMemory<'_>, offset: u64) -> Result<u64, MemoryError> {
        mem.read_u64(self.at(offset))
    }

    /// A raw 32-bit word (a reference id).
    pub fn u32(&self, mem: &GuestMemory<'_>, offset: u64) -> Result<u32, MemoryError> {
        mem.read_u32(self.at(offset))
    }

    /// The (address, length) of a Go slice or string header at `offset`,
    /// checked to lie inside memory.
    pub fn span(&self, mem: &GuestMemory<'_>, offset: u64) -> Result<(u64, u64), MemoryError> {
        let addr = mem.read_u64(self.at(offset))?;
        let len = mem.read_u64(self.at(offset + 8))?;
        mem.range(addr, len)?;
        Ok((addr, len))
    }

    /// The bytes of a Go slice or string at `offset`.
    pub fn bytes<'m>(
        &self,
        mem: &'m GuestMemory<'_>,
        offset: u64,
    ) -> Result<&'m [u8], MemoryError> {
        let (addr, len) = self.span(mem, offset)?;
        mem.slice(addr, len)
    }

    /// A Go string at `offset`, decoded as `TextDecoder` would (invalid UTF-8
    /// becomes U+FFFD). Valid UTF-8 is borrowed from memory, not copied.
    pub fn string<'m>(
        &self,
        mem: &'m GuestMemory<'_>,
        offset: u64,
    ) -> Result<std::borrow::Cow<'m, str>, MemoryError> {
        Ok(String::from_utf8_lossy(self.bytes(mem, offset)?))
    }

    /// Writes a 64-bit result word.
    pub fn set_u64(
        &self,
        mem: &mut GuestMemory<'_>,
        offset: u64,
        v: u64,
    ) -> Result<(), MemoryError> {
        mem.write_u64(self.at(offset), v)
    }

    /// Writes a 32-bit result word.
    pub fn set_u32(
        &self,
        mem: &mut GuestMemory<'_>,
        offset: u64,
        v: u32,
    ) -> Result<(), MemoryError> {
        mem.write_u32(self.at(offset), v)
    }

    /// Writes a `bool` result.
    pub fn set_bool(
        &self,
        mem: &mut GuestMemory<'_>,
        offset: u64,
        v: bool,
    ) -> Result<(), MemoryError> {
        mem.write_u8(self.at(offset), u8::from(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_writes_little_endian_words() {
        let mut buf = vec![0u8; 64];
        let mut mem = GuestMemory::new(&mut buf);
        mem.write_u64(8, 0x0102_0304_0506_0708).unwrap();
        assert_eq!(mem.read_u32(8).unwrap(), 0x0506_0708);
        assert_eq!(mem.read_i64(8).unwrap(), 0x0102_0304_0506_0708);
        mem.write_u32(16, u32::MAX).unwrap();
        assert_eq!(mem.read_i32(16).unwrap(), -1);
    }

    #[test]
    fn out_of_bounds_is_an_error() {
        let mut buf = vec![0u8; 16];
        let mut mem = GuestMemory::new(&mut buf);
        assert!(mem.read_u64(9).is_err());
        assert!(mem.read_u64(8).is_ok());
        assert!(mem.write_u64(u64::MAX - 3, 1).is_err());
        let err = mem.slice(u64::MAX, 2).unwrap_err();
        assert_eq!(err.size, 16);
        assert!(mem.slice(16, 0).is_ok());
        assert!(mem.slice(17, 0).is_err());
    }

    #[test]
    fn frames_read_spans_and_strings_after_sp() {
        let mut buf = vec![0u8; 256];
        buf[100..105].copy_from_slice(b"hello");
        let mut mem = GuestMemory::new(&mut buf);
        let frame = Frame::new(32);
        frame.set_u64(&mut mem, 8, 100).unwrap();
        frame.set_u64(&mut mem, 16, 5).unwrap();
        assert_eq!(frame.string(&mem, 8).unwrap(), "hello");
        assert!(matches!(
            frame.string(&mem, 8).unwrap(),
            std::borrow::Cow::Borrowed(_)
        ));
        // A length that runs past the end of memory is refused.
        frame.set_u64(&mut mem, 16, 1 << 40).unwrap();
        assert!(frame.bytes(&mem, 8).is_err());
        // A negative sp is an unsigned address far out of bounds.
        assert!(Frame::new(-8).i64(&mem, 8).is_err());
    }

    #[test]
    fn invalid_utf8_becomes_replacement_characters() {
        let mut buf = vec![0u8; 64];
        buf[40..43].copy_from_slice(&[b'a', 0xff, b'b']);
        let mut mem = GuestMemory::new(&mut buf);
        let frame = Frame::new(0);
        frame.set_u64(&mut mem, 8, 40).unwrap();
        frame.set_u64(&mut mem, 16, 3).unwrap();
        assert_eq!(frame.string(&mem, 8).unwrap(), "a\u{fffd}b");
    }
}
