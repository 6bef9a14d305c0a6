//! `spoor-sdk-tools`: build steps of the browser SDK that need more than a shell line.
//!
//! ```text
//! spoor-sdk-tools prune FILE.wasm [--drop-export NAME]… [--rename-export OLD=NEW]…
//!                        [--import-module NAME]
//!                                              remove the element section and exports, rename
//!                                              exports, shorten import names (wasm.rs)
//! spoor-sdk-tools minify [--module] IN OUT     minify JS (oxc: compress + mangle)
//! spoor-sdk-tools check-glue GENERATED.js CORE.js
//!                                              js/core.js's glue handles the wasm's imports
//! spoor-sdk-tools precompress [--iterations N] FILE…
//!                                              write FILE.gz (zopfli, deterministic), checked
//!                                              to decompress to FILE (precompress.rs)
//! ```

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

mod glue;
mod minify;
mod precompress;
mod wasm;

#[derive(Parser)]
#[command(about = "Build steps of Spoor's browser SDK")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Removes, in place, the element section (the funcref table's entries: nothing calls
    /// through the table, `sdk-wasm/build` checks after `wasm-opt` that no `call_indirect` is
    /// left) and the exports named.
    Prune {
        file: PathBuf,
        /// An export the JS glue does not use (repeatable).
        #[arg(long = "drop-export")]
        drop_exports: Vec<String>,
        /// Renames an export, `OLD=NEW` (repeatable).
        #[arg(long = "rename-export")]
        rename_exports: Vec<String>,
        /// Also move every import to this module, named without wasm-bindgen's `__wbg_`
        /// prefix and hash suffix (the hashes are incompressible bytes).
        #[arg(long = "import-module")]
        import_module: Option<String>,
    },
    /// Checks that js/core.js's hand-written glue handles every import of the wasm (as
    /// wasm-bindgen's generated glue for it lists them) with the same arity, and sets up the
    /// externref table the same way.
    CheckGlue { generated: PathBuf, core: PathBuf },
    /// Minifies a JS file (compress, mangle; `/*! … */` comments are dropped).
    Minify {
        /// Parse as an ES module (else as a classic script).
        #[arg(long)]
        module: bool,
        input: PathBuf,
        output: PathBuf,
    },
    /// Writes `FILE.gz` next to each file: a deterministic gzip stream (no mtime, no name)
    /// made with zopfli, decoded again and compared with the file before it is written. For
    /// servers that send a precompressed `.gz` to clients accepting gzip (`gzip_static`).
    Precompress {
        /// Zopfli iterations per block (more: slower, rarely smaller).
        #[arg(long, default_value_t = precompress::DEFAULT_ITERATIONS)]
        iterations: u64,
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Prune {
            file,
            drop_exports,
            rename_exports,
            import_module,
        } => {
            let bytes =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let (mut out, mut dropped) = wasm::prune(&bytes, &drop_exports)?;
            let renames = rename_exports
                .iter()
                .map(|r| {
                    r.split_once('=')
                        .map(|(a, b)| (a.to_string(), b.to_string()))
                        .with_context(|| format!("--rename-export {r}: OLD=NEW"))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            if !renames.is_empty() {
                let len = out.len();
                out = wasm::rename_exports(&out, &renames)?;
                dropped += len - out.len();
            }
            if let Some(module) = import_module {
                let len = out.len();
                out = wasm::short_imports(&out, &module)?;
                dropped += len - out.len();
            }
            std::fs::write(&file, out)?;
            eprintln!("prune: {dropped} bytes removed");
        }
        Command::CheckGlue { generated, core } => {
            let read = |p: &PathBuf| {
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))
            };
            let n = glue::check(&read(&generated)?, &read(&core)?)?;
            eprintln!("check-glue: {n} imports handled");
        }
        Command::Minify {
            module,
            input,
            output,
        } => {
            let source = std::fs::read_to_string(&input)
                .with_context(|| format!("reading {}", input.display()))?;
            let code = minify::minify(&source, module)?;
            std::fs::write(&output, code)?;
        }
        Command::Precompress { iterations, files } => {
            // One thread per file (the wasm takes most of the time; the JS files run beside it).
            std::thread::scope(|scope| {
                let jobs: Vec<_> = files
                    .iter()
                    .map(|file| scope.spawn(move || precompress_file(file, iterations)))
                    .collect();
                jobs.into_iter()
                    .try_for_each(|job| job.join().expect("precompress thread panicked"))
            })?;
        }
    }
    Ok(())
}

/// `file` → `file.gz` (written to a temporary name first, so no half file is ever served).
fn precompress_file(file: &std::path::Path, iterations: u64) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let data = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let gz = precompress::gzip(&data, iterations)
        .with_context(|| format!("precompressing {}", file.display()))?;
    let mut name = file.as_os_str().to_owned();
    name.push(".gz");
    let target = PathBuf::from(name);
    let mut tmp = target.clone().into_os_string();
    tmp.push(".tmp");
    std::fs::write(&tmp, &gz).with_context(|| format!("writing {}", target.display()))?;
    std::fs::rename(&tmp, &target).with_context(|| format!("writing {}", target.display()))?;
    eprintln!(
        "precompress: {} {} -> {} bytes (zopfli, {iterations} iterations, {:.1} s)",
        target.display(),
        data.len(),
        gz.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
