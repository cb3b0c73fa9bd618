//! Reading back the arrays of a snapshot block (the graph's payload, or a
//! section) in the order [`put_array`](super::put_array) wrote them.
//!
//! Every array starts at a multiple of [`ALIGN`] bytes from the start of its
//! block, and every block at a multiple of [`ALIGN`] in the file, so an array of
//! a mapped file can be borrowed in place ([`SectionReader::take_array`]) as a
//! slice of its own type. Every count is checked against the bytes the block has
//! left before anything is allocated or borrowed, so a corrupt count is a clear
//! error and never a huge allocation or a panic.

use super::array::{Array, MappedFile};

/// The alignment of every array in a block (its count, then its elements), and
/// of every block in the file: enough for any element type stored (`u64`).
pub(super) const ALIGN: usize = 8;

/// Reads back, in order, the arrays written with [`put_array`](super::put_array),
/// from bytes in memory or from a mapped snapshot (then borrowed, not copied,
/// where the caller asks for an [`Array`]).
pub struct SectionReader<'a> {
    /// The whole block.
    bytes: &'a [u8],
    /// Bytes of the block read so far.
    pos: usize,
    /// The mapped file and where the block starts in it, when it is mapped.
    file: Option<(&'a MappedFile, usize)>,
}

impl std::fmt::Debug for SectionReader<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SectionReader")
            .field("len", &self.bytes.len())
            .field("pos", &self.pos)
            .field("mapped", &self.file.is_some())
            .finish()
    }
}

impl<'a> SectionReader<'a> {
    /// A reader of arrays from bytes in memory (as a section's bytes: the
    /// first array at their start).
    pub fn new(bytes: &'a [u8]) -> SectionReader<'a> {
        SectionReader {
            bytes,
            pos: 0,
            file: None,
        }
    }

    /// A reader of the block `bytes`, which starts at byte `at` of `file`.
    pub(super) fn mapped(file: &'a MappedFile, at: usize, bytes: &'a [u8]) -> SectionReader<'a> {
        SectionReader {
            bytes,
            pos: 0,
            file: Some((file, at)),
        }
    }

    /// The next array's first byte (in the block) and element count, past its
    /// padding and count; `Err` when the block ends inside it.
    fn next(&mut self, size: usize) -> Result<(usize, usize), String> {
        let short = || "the data ends inside an array".to_owned();
        let count_at = self.pos.next_multiple_of(ALIGN);
        let start = count_at.checked_add(8).ok_or_else(short)?;
        let count_bytes = self.bytes.get(count_at..start).ok_or_else(short)?;
        let mut count = [0u8; 8];
        count.copy_from_slice(count_bytes);
        let count = usize::try_from(u64::from_le_bytes(count)).map_err(|_| short())?;
        let n_bytes = count
            .checked_mul(size)
            .filter(|&n| n <= self.bytes.len() - start)
            .ok_or_else(short)?;
        self.pos = start + n_bytes;
        Ok((start, count))
    }

    /// The next array, copied into a `Vec` of its own; `Err` (a reason) when
    /// the bytes end inside it.
    pub fn take<T: bytemuck::Pod>(&mut self) -> Result<Vec<T>, String> {
        let size = std::mem::size_of::<T>();
        let (start, count) = self.next(size)?;
        Ok(bytemuck::allocation::pod_collect_to_vec(
            &self.bytes[start..start + count * size],
        ))
    }

    /// The next array, borrowed in place when the block is mapped (no copy),
    /// copied otherwise.
    pub fn take_array<T: bytemuck::Pod>(&mut self) -> Result<Array<T>, String> {
        let size = std::mem::size_of::<T>();
        let (start, count) = self.next(size)?;
        match self.file {
            Some((file, at)) => Array::mapped(file, at + start, count)
                .ok_or_else(|| "an array is not aligned in the file".to_owned()),
            None => Ok(Array::from(bytemuck::allocation::pod_collect_to_vec(
                &self.bytes[start..start + count * size],
            ))),
        }
    }

    /// Whether every byte has been read.
    pub fn is_empty(&self) -> bool {
        self.pos == self.bytes.len()
    }
}
