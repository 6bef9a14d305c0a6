//! `spoor-sdk-tools`: build steps of the browser SDK that need more than a shell line.
//!
//! ```text
//! spoor-sdk-tools fix-table-export FILE.wasm   point wasm-bindgen's externref table export back
//! spoor-sdk-tools minify [--module] IN OUT     minify JS (oxc: compress + mangle)
//! ```

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

mod minify;
mod wasm;

#[derive(Parser)]
#[command(about = "Build steps of Spoor's browser SDK")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Works around binaryen 108 (Debian's wasm-opt) writing every table export with index 0,
    /// which points wasm-bindgen's `__wbindgen_externrefs` at the funcref table: rewrites that
    /// export, in place, to the module's first externref table.
    FixTableExport {
        file: PathBuf,
        /// The export to fix.
        #[arg(long, default_value = "__wbindgen_externrefs")]
        export: String,
    },
    /// Minifies a JS file (compress, mangle; `/*! … */` comments are dropped).
    Minify {
        /// Parse as an ES module (else as a classic script).
        #[arg(long)]
        module: bool,
        input: PathBuf,
        output: PathBuf,
    },
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::FixTableExport { file, export } => {
            let mut bytes =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let fixed = wasm::fix_table_export(&mut bytes, &export)?;
            std::fs::write(&file, &bytes)?;
            eprintln!("fix-table-export: {fixed} export(s) fixed");
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
    }
    Ok(())
}
