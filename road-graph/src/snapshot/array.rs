//! Arrays that are either owned or borrowed from a mapped snapshot file, and the
//! one place in the workspace that maps a file.
//!
//! A loaded snapshot's large arrays (the router's preparation: 40 MiB on a metro
//! area) are not copied out of the file: the file is mapped read-only
//! ([`map_file`]) and each array borrows its bytes in place ([`Array`]), so a
//! start pays neither the kernel's copy, nor the page faults of fresh memory to
//! copy into, nor freeing it at exit. An array that must change (a metric
//! re-customized in place) is copied into memory of its own on its first write
//! ([`Array::to_mut`]), as a `Cow` would.
//!
//! **Assumption**: a mapped snapshot is not modified while it is mapped.
//! Snapshots are written to a temporary file and renamed over the old name
//! (`save_snapshot`), which leaves a mapped file untouched, so the tracker never
//! breaks it. If another program rewrites the file in place meanwhile, the
//! arrays change under the process (a route may come out wrong or a lookup may
//! find an index out of bounds and panic: every index was checked on load, not
//! since), and if it truncates the file, touching the lost pages kills the
//! process with `SIGBUS`. Replace a snapshot by renaming a new one over it.

use std::sync::Arc;

use memmap2::Mmap;
use yoke::Yoke;

/// A whole mapped file, kept alive by every array that borrows from it.
pub(crate) type MappedFile = Yoke<&'static [u8], Arc<Mmap>>;

/// Maps `file` read-only, its pages populated at once (one system call instead
/// of a page fault per 64 KiB).
#[allow(unsafe_code)]
pub(crate) fn map_file(file: &std::fs::File) -> std::io::Result<MappedFile> {
    // SAFETY: `Mmap::map` is unsafe because the mapped bytes change if the file
    // is modified while mapped, which Rust's shared references forbid. We
    // assume the file is not modified while mapped: snapshots are replaced by
    // renaming a new file over the old name, never rewritten in place (see the
    // module documentation for what happens if another program does so).
    let map = unsafe { memmap2::MmapOptions::new().populate().map(file)? };
    Ok(Yoke::attach_to_cart(Arc::new(map), |map: &Mmap| &map[..]))
}

/// An array of plain values: owned, or borrowed in place from a mapped file.
/// Reads go through `Deref` to a slice; [`Array::to_mut`] copies a borrowed
/// array into memory of its own first.
pub struct Array<T: 'static> {
    /// The values when they are not mapped (then empty).
    owned: Vec<T>,
    mapped: Option<Yoke<&'static [T], Arc<Mmap>>>,
}

impl<T: bytemuck::Pod> Array<T> {
    /// The `len` values at byte `at` of a mapped file; `None` when they lie
    /// outside it or are not aligned for `T`.
    pub(crate) fn mapped(file: &MappedFile, at: usize, len: usize) -> Option<Array<T>> {
        let n_bytes = len.checked_mul(std::mem::size_of::<T>())?;
        let end = at.checked_add(n_bytes)?;
        file.try_map_project_cloned(|bytes, _| {
            let bytes: &[u8] = bytes;
            bytes
                .get(at..end)
                .and_then(|b| bytemuck::try_cast_slice::<u8, T>(b).ok())
                .ok_or(())
        })
        .ok()
        .map(|y| Array {
            owned: Vec::new(),
            mapped: Some(y),
        })
    }

    /// The array as a `Vec` of its own, copied from the file if it is mapped.
    pub fn into_vec(self) -> Vec<T> {
        match self.mapped {
            None => self.owned,
            Some(y) => y.get().to_vec(),
        }
    }

    /// The values to change in place: a mapped array is copied into memory of
    /// its own first (once).
    pub fn to_mut(&mut self) -> &mut Vec<T> {
        if let Some(y) = self.mapped.take() {
            self.owned = y.get().to_vec();
        }
        &mut self.owned
    }
}

impl<T> Array<T> {
    /// Bytes of memory this array owns (none while it borrows from a file).
    pub fn heap_bytes(&self) -> usize {
        self.owned.capacity() * std::mem::size_of::<T>()
    }

    /// Whether the values are borrowed from a mapped file.
    pub fn is_mapped(&self) -> bool {
        self.mapped.is_some()
    }
}

impl<T> std::ops::Deref for Array<T> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        match &self.mapped {
            None => &self.owned,
            Some(y) => y.get(),
        }
    }
}

impl<T> From<Vec<T>> for Array<T> {
    fn from(v: Vec<T>) -> Array<T> {
        Array {
            owned: v,
            mapped: None,
        }
    }
}

impl<T> Default for Array<T> {
    fn default() -> Array<T> {
        Array::from(Vec::new())
    }
}

impl<T: Clone> Clone for Array<T> {
    fn clone(&self) -> Array<T> {
        Array {
            owned: self.owned.clone(),
            mapped: self.mapped.clone(),
        }
    }
}

impl<T: PartialEq> PartialEq for Array<T> {
    fn eq(&self, other: &Array<T>) -> bool {
        **self == **other
    }
}

impl<T: std::fmt::Debug> std::fmt::Debug for Array<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Array")
            .field("len", &self.len())
            .field("mapped", &self.is_mapped())
            .finish()
    }
}
