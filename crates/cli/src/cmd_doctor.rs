//! `palisade doctor`: what this binary runs on — the PyTorch it was built for and the libtorch it
//! loaded, CUDA devices, NCCL — and the start-up check that the two PyTorch versions agree.

use anyhow::{bail, Result};
use palisade_sharding::{libtorch, nccl_lib, nccl_lib::NcclLib};
use serde_json::json;

/// The PyTorch version this binary was compiled against (empty when the build could not tell).
pub const BUILT_TORCH: &str = env!("PALISADE_BUILT_TORCH");

/// Print the environment palisade runs in.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// One JSON object instead of lines for people.
    #[arg(long)]
    json: bool,
}

/// Refuses to go on when the loaded libtorch is another PyTorch release than the build's: the
/// C++ ABI differs between releases, so running on would crash inside libtorch sooner or later.
pub fn check_libtorch() -> Result<()> {
    let Some(dir) = libtorch::loaded_dir() else {
        return Ok(());
    };
    let (Some(found), false) = (libtorch::version_in(&dir), BUILT_TORCH.is_empty()) else {
        return Ok(());
    };
    if libtorch::major_minor(&found) != libtorch::major_minor(BUILT_TORCH) {
        bail!(
            "this palisade was built for PyTorch {BUILT_TORCH} but loaded the libtorch of PyTorch \
             {found} from {}; use a build for {found} (scripts/setup.sh --torch {}) or point \
             PALISADE_TORCH_LIB at a PyTorch {} install",
            dir.display(),
            libtorch::major_minor(&found),
            libtorch::major_minor(BUILT_TORCH)
        );
    }
    Ok(())
}

/// Runs `palisade doctor`.
pub fn run(a: Args) -> Result<()> {
    let dir = libtorch::loaded_dir();
    let found = dir.as_deref().and_then(libtorch::version_in);
    let cuda_lib = libtorch::load_cuda();
    let cuda = cuda_lib.is_ok() && tch::Cuda::is_available();
    let devices = if cuda { tch::Cuda::device_count() } else { 0 };
    let nccl = NcclLib::load().and_then(|l| Ok((l.version()?, l.path.clone())));
    let report = json!({
        "palisade": env!("CARGO_PKG_VERSION"),
        "built_for_torch": BUILT_TORCH,
        "libtorch_dir": dir.as_ref().map(|d| d.display().to_string()),
        "libtorch_version": found,
        "threads": tch::get_num_threads(),
        "cuda_devices": devices,
        "cudnn": cuda && tch::Cuda::cudnn_is_available(),
        "cuda_error": cuda_lib.as_ref().err(),
        "nccl_version": nccl.as_ref().ok().map(|(v, _)| nccl_lib::version_text(*v)),
        "nccl_path": nccl.as_ref().ok().map(|(_, p)| p.display().to_string()),
        "nccl_error": nccl.as_ref().err().map(|e| e.to_string()),
    });
    if a.json {
        println!("{report}");
        return Ok(());
    }
    println!(
        "palisade  {} (built for PyTorch {BUILT_TORCH})",
        env!("CARGO_PKG_VERSION")
    );
    match (&dir, &found) {
        (Some(d), Some(v)) => println!("libtorch  PyTorch {v} in {}", d.display()),
        (Some(d), None) => println!("libtorch  {} (version unknown)", d.display()),
        _ => println!("libtorch  not found in this process's memory map"),
    }
    println!("threads   {}", tch::get_num_threads());
    if cuda {
        println!("cuda      {devices} device(s), cuDNN {}", report["cudnn"]);
    } else if let Err(e) = &cuda_lib {
        println!("cuda      no GPU ({e})");
    } else {
        println!("cuda      no GPU");
    }
    match &nccl {
        Ok((v, p)) => println!(
            "nccl      {} from {}",
            nccl_lib::version_text(*v),
            p.display()
        ),
        Err(e) => println!("nccl      not loaded: {e}"),
    }
    Ok(())
}
