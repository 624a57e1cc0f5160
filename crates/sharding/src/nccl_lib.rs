//! NCCL loaded at run time: `libnccl.so.2` from the PyTorch wheel (`site-packages/nvidia/nccl/
//! lib`, beside the libtorch this process runs), `PALISADE_NCCL_LIB`, or the system's. Loading
//! at run time keeps CPU-only builds and machines free of any NCCL or CUDA requirement.

use crate::error::{Result, ShardingError};
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::path::PathBuf;

/// Environment variable naming a `libnccl.so.2` to use.
pub const NCCL_LIB_ENV: &str = "PALISADE_NCCL_LIB";

/// `ncclUniqueId`: the opaque token rank 0 creates and every rank needs to join.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct UniqueId {
    /// NCCL's bytes.
    pub internal: [c_char; 128],
}

/// `ncclComm_t`.
pub type Comm = *mut c_void;
/// `cudaStream_t`; null is the legacy default stream, the one libtorch uses unless told.
pub type Stream = *mut c_void;

type Res = c_int;

/// The NCCL entry points palisade calls.
#[allow(missing_docs)]
pub struct NcclLib {
    pub path: PathBuf,
    pub get_version: unsafe extern "C" fn(*mut c_int) -> Res,
    pub get_unique_id: unsafe extern "C" fn(*mut UniqueId) -> Res,
    pub comm_init_rank: unsafe extern "C" fn(*mut Comm, c_int, UniqueId, c_int) -> Res,
    pub comm_destroy: unsafe extern "C" fn(Comm) -> Res,
    pub comm_abort: unsafe extern "C" fn(Comm) -> Res,
    pub get_error_string: unsafe extern "C" fn(Res) -> *const c_char,
    pub all_reduce:
        unsafe extern "C" fn(*const c_void, *mut c_void, usize, c_int, c_int, Comm, Stream) -> Res,
    pub broadcast:
        unsafe extern "C" fn(*const c_void, *mut c_void, usize, c_int, c_int, Comm, Stream) -> Res,
    pub all_gather:
        unsafe extern "C" fn(*const c_void, *mut c_void, usize, c_int, Comm, Stream) -> Res,
    pub reduce_scatter:
        unsafe extern "C" fn(*const c_void, *mut c_void, usize, c_int, c_int, Comm, Stream) -> Res,
    pub send: unsafe extern "C" fn(*const c_void, usize, c_int, c_int, Comm, Stream) -> Res,
    pub recv: unsafe extern "C" fn(*mut c_void, usize, c_int, c_int, Comm, Stream) -> Res,
    pub group_start: unsafe extern "C" fn() -> Res,
    pub group_end: unsafe extern "C" fn() -> Res,
}

// SAFETY: plain function pointers into a library that stays loaded for the process's life.
unsafe impl Send for NcclLib {}
unsafe impl Sync for NcclLib {}

/// Candidate libraries, most specific first: only `PALISADE_NCCL_LIB` when it is set (a library
/// asked for by name is not silently replaced by another), else the wheel's, else the system's.
pub fn candidates() -> Vec<PathBuf> {
    if let Ok(p) = std::env::var(NCCL_LIB_ENV) {
        return vec![PathBuf::from(p)];
    }
    let mut out = Vec::new();
    if let Some(torch_lib) = crate::libtorch::loaded_dir() {
        // site-packages/torch/lib → site-packages/nvidia/nccl/lib
        if let Some(site) = torch_lib.parent().and_then(|t| t.parent()) {
            out.push(site.join("nvidia/nccl/lib/libnccl.so.2"));
        }
    }
    out.push(PathBuf::from("libnccl.so.2"));
    out
}

/// `22703` → `2.27.3`: NCCL (since 2.9) codes its version as major·10000 + minor·100 + patch.
pub fn version_text(code: c_int) -> String {
    format!("{}.{}.{}", code / 10000, code / 100 % 100, code % 100)
}

/// Looks `name` up in `handle` as a function pointer of type `F`.
///
/// # Safety
/// `F` must be a function pointer type matching the symbol's C signature.
unsafe fn resolve<F: Copy>(handle: *mut c_void, name: &str) -> std::result::Result<F, String> {
    assert_eq!(std::mem::size_of::<F>(), std::mem::size_of::<*mut c_void>());
    let c = CString::new(name).map_err(|e| e.to_string())?;
    // SAFETY: dlsym on a live handle with a valid C string.
    let p = unsafe { libc::dlsym(handle, c.as_ptr()) };
    if p.is_null() {
        return Err(format!("lacks {name}"));
    }
    // SAFETY: the caller vouches that F is the symbol's function pointer type; sizes match.
    Ok(unsafe { std::mem::transmute_copy::<*mut c_void, F>(&p) })
}

fn load_err(msg: String) -> ShardingError {
    ShardingError::Init {
        backend: "nccl",
        msg,
    }
}

impl NcclLib {
    /// Loads the first candidate that opens.
    pub fn load() -> Result<NcclLib> {
        let mut tried = Vec::new();
        for path in candidates() {
            match NcclLib::open(&path) {
                Ok(lib) => return Ok(lib),
                Err(e) => tried.push(format!("{}: {e}", path.display())),
            }
        }
        Err(load_err(format!(
            "no usable libnccl.so.2 (set {NCCL_LIB_ENV}); tried {}",
            tried.join("; ")
        )))
    }

    /// Opens `path` and resolves every entry point.
    pub fn open(path: &std::path::Path) -> std::result::Result<NcclLib, String> {
        let handle = crate::dl::open(path, libc::RTLD_NOW | libc::RTLD_LOCAL)?;
        // SAFETY: each symbol is NCCL's function of that name, whose C signature (nccl.h,
        // stable since NCCL 2.7) the field's type spells out.
        unsafe {
            Ok(NcclLib {
                path: path.to_path_buf(),
                get_version: resolve(handle, "ncclGetVersion")?,
                get_unique_id: resolve(handle, "ncclGetUniqueId")?,
                comm_init_rank: resolve(handle, "ncclCommInitRank")?,
                comm_destroy: resolve(handle, "ncclCommDestroy")?,
                comm_abort: resolve(handle, "ncclCommAbort")?,
                get_error_string: resolve(handle, "ncclGetErrorString")?,
                all_reduce: resolve(handle, "ncclAllReduce")?,
                broadcast: resolve(handle, "ncclBroadcast")?,
                all_gather: resolve(handle, "ncclAllGather")?,
                reduce_scatter: resolve(handle, "ncclReduceScatter")?,
                send: resolve(handle, "ncclSend")?,
                recv: resolve(handle, "ncclRecv")?,
                group_start: resolve(handle, "ncclGroupStart")?,
                group_end: resolve(handle, "ncclGroupEnd")?,
            })
        }
    }

    /// NCCL's version as `major·10000 + minor·100 + patch` (e.g. 22907 for 2.29.7).
    pub fn version(&self) -> Result<i32> {
        let mut v = 0;
        // SAFETY: writes one int.
        self.check("version", unsafe { (self.get_version)(&mut v) })?;
        Ok(v)
    }

    /// Maps an NCCL result code to an error naming the collective.
    pub fn check(&self, op: &'static str, code: c_int) -> Result<()> {
        if code == 0 {
            return Ok(());
        }
        // SAFETY: NCCL returns a static NUL-terminated string for any code.
        let what = unsafe { CStr::from_ptr((self.get_error_string)(code)) };
        Err(ShardingError::Collective {
            op,
            msg: format!("NCCL error {code}: {}", what.to_string_lossy()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_the_wheels_nccl_when_present() {
        // Touch libtorch so it is mapped, as it is in any palisade process.
        let _ = tch::Tensor::zeros([1], (tch::Kind::Float, tch::Device::Cpu));
        let wheel = candidates()
            .into_iter()
            .find(|p| p.is_absolute() && p.exists());
        let Some(path) = wheel else {
            eprintln!("skipped: no libnccl.so.2 beside libtorch (a CPU-only PyTorch wheel)");
            return;
        };
        let lib = NcclLib::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let v = lib.version().unwrap();
        assert!(v >= 20700, "NCCL {v} is older than 2.7");
        let err = lib.check("all_reduce", 2).unwrap_err().to_string();
        assert!(
            err.contains("all_reduce") && err.contains("NCCL error 2"),
            "{err}"
        );
    }

    #[test]
    fn version_codes_read_as_versions() {
        assert_eq!(version_text(22703), "2.27.3");
        assert_eq!(version_text(21805), "2.18.5");
    }

    #[test]
    fn a_missing_library_is_named() {
        let err = NcclLib::open(std::path::Path::new("/nonexistent/libnccl.so.2"))
            .err()
            .unwrap_or_default();
        assert!(
            err.contains("/nonexistent/libnccl.so.2") || err.contains("No such file"),
            "{err}"
        );
    }
}
