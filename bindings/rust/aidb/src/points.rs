//! Writing and reading points.
use crate::collection::Collection;
use crate::error::{call, Error, Result, Status};
use crate::{cstr_to_string, cstring, sys};
use std::os::raw::c_char;
use std::ptr;

/// A point read back with [`Collection::get`].
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub vector: Vec<f32>,
    pub payload: Option<String>,
}

impl Collection {
    /// Inserts or replaces one point; `payload` is a JSON object or `None`.
    pub fn upsert(&self, id: &str, vector: &[f32], payload: Option<&str>) -> Result<()> {
        let cid = cstring(id)?;
        let (pp, pl) = payload.map_or((ptr::null(), 0), |p| (p.as_ptr().cast::<c_char>(), p.len()));
        // SAFETY: the slices outlive the call; the payload is passed with its length.
        call(|m| unsafe {
            sys::aidb_collection_upsert(self.raw(), cid.as_ptr(), vector.as_ptr(), vector.len(), pp, pl, m)
        })
    }

    /// Inserts or replaces `ids.len()` points atomically. `vectors` holds
    /// `ids.len() * dim` floats, row-major (not copied); `payloads` is `None`
    /// or one optional JSON object per point.
    pub fn upsert_batch<S: AsRef<str>>(
        &self,
        ids: &[S],
        vectors: &[f32],
        payloads: Option<&[Option<&str>]>,
    ) -> Result<()> {
        let n = ids.len();
        if n == 0 {
            return Ok(());
        }
        if vectors.len() % n != 0 {
            return Err(Error::new(Status::DimensionMismatch, "vectors.len() is not a multiple of ids.len()"));
        }
        let cids = ids.iter().map(|s| cstring(s.as_ref())).collect::<Result<Vec<_>>>()?;
        let id_ptrs: Vec<*const c_char> = cids.iter().map(|c| c.as_ptr()).collect();
        let cpl = match payloads {
            None => None,
            Some(p) if p.len() != n => return Err(Error::new(Status::InvalidArgument, "payloads.len() != ids.len()")),
            Some(p) => Some(p.iter().map(|o| o.map(cstring).transpose()).collect::<Result<Vec<_>>>()?),
        };
        let pl_ptrs: Option<Vec<*const c_char>> =
            cpl.as_ref().map(|v| v.iter().map(|o| o.as_ref().map_or(ptr::null(), |c| c.as_ptr())).collect());
        let pl_ptr = pl_ptrs.as_ref().map_or(ptr::null(), |v| v.as_ptr());
        // SAFETY: all arrays hold n valid entries and outlive the call.
        call(|m| unsafe {
            sys::aidb_collection_upsert_batch(
                self.raw(),
                n,
                id_ptrs.as_ptr(),
                vectors.as_ptr(),
                vectors.len() / n,
                pl_ptr,
                m,
            )
        })
    }

    /// Deletes a point ([`Status::NotFound`] if there is none).
    pub fn delete(&self, id: &str) -> Result<()> {
        let cid = cstring(id)?;
        call(|m| unsafe { sys::aidb_collection_delete(self.raw(), cid.as_ptr(), m) })
    }

    /// Reads a point: its stored vector (normalised for cosine) and payload.
    pub fn get(&self, id: &str) -> Result<Point> {
        let mut vector = vec![0f32; self.info()?.dim as usize];
        let payload = self.get_into(id, &mut vector)?;
        Ok(Point { vector, payload })
    }

    /// Reads a point's vector into `out` (its length must be the dimension)
    /// and returns its payload.
    pub fn get_into(&self, id: &str, out: &mut [f32]) -> Result<Option<String>> {
        let cid = cstring(id)?;
        let mut pl: *mut c_char = ptr::null_mut();
        call(|m| unsafe {
            sys::aidb_collection_get(self.raw(), cid.as_ptr(), out.as_mut_ptr(), out.len(), &mut pl, m)
        })?;
        if pl.is_null() {
            return Ok(None);
        }
        // SAFETY: a malloc'd NUL-terminated JSON string, freed with aidb_free.
        unsafe {
            let s = cstr_to_string(pl);
            sys::aidb_free(pl.cast());
            Ok(Some(s))
        }
    }
}
