//! `dlopen` with the loader's reason as the error: for the libraries palisade loads at run time
//! (NCCL, libtorch_cuda), so that CPU machines need neither.

use std::ffi::{c_void, CStr, CString};
use std::path::Path;

/// Opens `path` with `flags` (`libc::RTLD_*`); the handle is never closed, so what is resolved
/// from it stays valid for the process's life.
pub fn open(path: &Path, flags: i32) -> Result<*mut c_void, String> {
    let c = CString::new(path.as_os_str().as_encoded_bytes()).map_err(|e| e.to_string())?;
    // SAFETY: dlopen with a valid C string.
    let handle = unsafe { libc::dlopen(c.as_ptr(), flags) };
    if !handle.is_null() {
        return Ok(handle);
    }
    // SAFETY: dlerror returns a thread-local C string or null.
    let why = unsafe { libc::dlerror() };
    Err(if why.is_null() {
        "cannot open".into()
    } else {
        // SAFETY: non-null dlerror strings are NUL-terminated.
        unsafe { CStr::from_ptr(why) }
            .to_string_lossy()
            .into_owned()
    })
}
