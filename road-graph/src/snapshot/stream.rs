//! Reading a snapshot as it streams past: every array goes straight from the file
//! into the `Vec` of its own type that keeps it (no buffer of the whole file, no
//! second copy), and the CRC-32 of every byte is computed as it is read, so the
//! file is read exactly once.
//!
//! [`SectionReader`] reads arrays the way [`put_array`](super::put_array) writes
//! them, from bytes in memory or from the file; every count is checked against
//! the bytes its block says are left before anything is allocated, so a corrupt
//! count is a clear error and never a huge allocation.

use std::io::Read;

/// A reader that hashes and counts what it reads, and keeps the first I/O error,
/// so that the loader tells a failing disk (an I/O error) from a file whose
/// contents are wrong (a corrupt snapshot) once an array reader gives up.
pub(super) struct Hashed<R> {
    inner: R,
    hasher: crc32fast::Hasher,
    /// Bytes read from the start of the file.
    pub(super) position: u64,
    pub(super) failure: Option<std::io::Error>,
}

impl<R: Read> Hashed<R> {
    pub(super) fn new(inner: R) -> Hashed<R> {
        Hashed {
            inner,
            hasher: crc32fast::Hasher::new(),
            position: 0,
            failure: None,
        }
    }

    /// The CRC-32 of what was read since the last call (or the start), and a
    /// fresh one for what follows: one per block of the file.
    pub(super) fn take_crc(&mut self) -> u32 {
        std::mem::take(&mut self.hasher).finalize()
    }

    /// Reads and hashes `n` bytes without keeping them: the rest of a block
    /// that its reader stopped short of, whose checksum still decides the error.
    pub(super) fn skip(&mut self, n: u64) -> std::io::Result<()> {
        let copied = std::io::copy(&mut self.by_ref().take(n), &mut std::io::sink())?;
        if copied < n {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        Ok(())
    }
}

impl<R: Read> Read for Hashed<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self.inner.read(buf) {
            Ok(n) => {
                self.hasher.update(&buf[..n]);
                self.position += n as u64;
                Ok(n)
            }
            Err(e) => {
                if e.kind() != std::io::ErrorKind::Interrupted && self.failure.is_none() {
                    self.failure = Some(std::io::Error::new(e.kind(), e.to_string()));
                }
                Err(e)
            }
        }
    }
}

/// Reads back, in order, the arrays written with [`put_array`](super::put_array):
/// each straight into memory of its own type (no per-element parsing), its count
/// checked against the bytes left first.
pub struct SectionReader<'a> {
    source: Source<'a>,
    /// Bytes of the block not read yet.
    left: u64,
}

enum Source<'a> {
    Bytes(&'a [u8]),
    Stream(&'a mut dyn Read),
}

impl std::fmt::Debug for SectionReader<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SectionReader")
            .field("left", &self.left)
            .finish_non_exhaustive()
    }
}

impl<'a> SectionReader<'a> {
    /// A reader of arrays from bytes in memory.
    pub fn new(bytes: &'a [u8]) -> SectionReader<'a> {
        SectionReader {
            left: bytes.len() as u64,
            source: Source::Bytes(bytes),
        }
    }

    /// A reader of the next `len` bytes of a stream.
    pub(super) fn stream(stream: &'a mut dyn Read, len: u64) -> SectionReader<'a> {
        SectionReader {
            source: Source::Stream(stream),
            left: len,
        }
    }

    /// The next array; `Err` (a reason) when the bytes end inside it.
    pub fn take<T: bytemuck::Pod>(&mut self) -> Result<Vec<T>, String> {
        let short = || "the data ends inside an array".to_owned();
        let mut count = [0u8; 8];
        self.fill(&mut count)?;
        let count = u64::from_le_bytes(count);
        count
            .checked_mul(std::mem::size_of::<T>() as u64)
            .filter(|&n_bytes| n_bytes <= self.left)
            .ok_or_else(short)?;
        let count = usize::try_from(count).map_err(|_| short())?;
        // Zeroed memory from the allocator (pages the kernel maps on first
        // write, no pass to clear them), then filled by the read itself.
        let mut items = bytemuck::allocation::try_zeroed_vec::<T>(count)
            .map_err(|()| format!("no memory for an array of {count} items"))?;
        self.fill(bytemuck::cast_slice_mut(&mut items))?;
        Ok(items)
    }

    /// Whether every byte has been read.
    pub fn is_empty(&self) -> bool {
        self.left == 0
    }

    fn fill(&mut self, buf: &mut [u8]) -> Result<(), String> {
        if buf.len() as u64 > self.left {
            return Err("the data ends inside an array".into());
        }
        match &mut self.source {
            Source::Bytes(rest) => {
                let (head, tail) = rest.split_at(buf.len());
                buf.copy_from_slice(head);
                *rest = tail;
            }
            Source::Stream(stream) => stream
                .read_exact(buf)
                .map_err(|e| format!("reading the file: {e}"))?,
        }
        self.left -= buf.len() as u64;
        Ok(())
    }
}
