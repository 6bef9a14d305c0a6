//! JS minification with oxc (parser, minifier: compress + mangle, code generator): as small
//! as terser's output for the SDK's files, without node at build time.

use anyhow::bail;
use oxc_allocator::Allocator;
use oxc_codegen::{Codegen, CodegenOptions};
use oxc_minifier::{Minifier, MinifierOptions};
use oxc_parser::Parser;
use oxc_span::SourceType;

/// Minifies `source`, an ES module when `module`, else a classic script.
pub(crate) fn minify(source: &str, module: bool) -> anyhow::Result<String> {
    let allocator = Allocator::default();
    let source_type = if module {
        SourceType::mjs()
    } else {
        SourceType::cjs()
    };
    let parsed = Parser::new(&allocator, source, source_type).parse();
    if parsed.panicked || !parsed.diagnostics.is_empty() {
        bail!("JS does not parse: {:?}", parsed.diagnostics);
    }
    let mut program = parsed.program;
    let minified = Minifier::new(MinifierOptions::default()).minify(&allocator, &mut program);
    Ok(Codegen::new()
        .with_options(CodegenOptions::minify())
        .with_scoping(minified.scoping)
        .build(&program)
        .code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_and_modules() {
        let src =
            "window.outer = function (longName) { var another = longName + 1; return another; };";
        let out = minify(src, false).unwrap();
        assert!(
            out.contains("window.outer") && !out.contains("longName"),
            "{out}"
        );
        assert!(out.len() < src.len() / 2, "{out}");
        let out = minify(
            "export function f(a) { return a * 2 }\nconsole.log(import.meta.url)",
            true,
        )
        .unwrap();
        assert!(
            out.contains("export") && out.contains("import.meta"),
            "{out}"
        );
        assert!(minify("function (", false).is_err());
        assert!(minify("var = ;", false).is_err());
    }
}
