//! Just enough of the wasm binary format to drop the element section, drop and rename
//! exports and shorten import names.

use anyhow::{bail, ensure};

/// Reads an unsigned LEB128 number at `*pos`.
fn leb(data: &[u8], pos: &mut usize) -> anyhow::Result<u32> {
    let mut result = 0u32;
    for shift in (0..35).step_by(7) {
        let Some(&b) = data.get(*pos) else {
            bail!("truncated wasm");
        };
        *pos += 1;
        result |= u32::from(b & 0x7f) << shift;
        if b < 0x80 {
            return Ok(result);
        }
    }
    bail!("bad LEB128 number")
}

/// Appends `n` as unsigned LEB128.
fn push_leb(out: &mut Vec<u8>, mut n: usize) {
    loop {
        let b = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

/// What [`rewrite_sections`] does with one section.
enum Section {
    Keep,
    Drop,
    Replace(Vec<u8>),
}

/// The module with each section (id, contents) kept, dropped or replaced by `f`.
fn rewrite_sections(
    data: &[u8],
    mut f: impl FnMut(u8, &[u8]) -> anyhow::Result<Section>,
) -> anyhow::Result<Vec<u8>> {
    ensure!(data.get(..4) == Some(b"\0asm"), "not a wasm module");
    let mut out = data.get(..8).unwrap_or_default().to_vec();
    let mut pos = 8;
    while pos < data.len() {
        let id = data[pos];
        let mut p = pos + 1;
        let size = leb(data, &mut p)? as usize;
        let end = p + size;
        ensure!(end <= data.len(), "truncated wasm");
        match f(id, &data[p..end])? {
            Section::Keep => out.extend_from_slice(&data[pos..end]),
            Section::Drop => {}
            Section::Replace(body) => {
                out.push(id);
                push_leb(&mut out, body.len());
                out.extend(body);
            }
        }
        pos = end;
    }
    Ok(out)
}

/// The module without its element section (the funcref table's initial entries) and
/// without the exports named in `drop_exports`; and how many bytes went.
///
/// Elements: Rust fills the funcref table only with functions whose address is taken; in
/// the SDK the only one left is wasm-bindgen's `link_mem_intrinsics` (with a precompiled
/// `core` it was `<u32 as Display>::fmt`, referenced by `alloc`'s out-of-memory message,
/// and `core::fmt` behind it), and a table entry keeps it in the binary: binaryen 108
/// treats active segments as roots. The build checks after `wasm-opt` that no `call_indirect` is left
/// (`sdk-wasm/build`), so no reachable code could use the table.
///
/// Exports: wasm-bindgen exports what its own glue may call (`__wbindgen_realloc`,
/// `__wbindgen_free`, …); js/core.js's glue never does, and what an export keeps alive
/// (their free and realloc paths) stays in the binary.
pub(crate) fn prune(data: &[u8], drop_exports: &[String]) -> anyhow::Result<(Vec<u8>, usize)> {
    let out = rewrite_sections(data, |id, section| match id {
        9 => Ok(Section::Drop),
        7 => {
            let mut p = 0;
            let mut kept = Vec::new();
            let mut n = 0;
            for _ in 0..leb(section, &mut p)? {
                let at = p;
                let len = leb(section, &mut p)? as usize;
                let name = section.get(p..p + len).unwrap_or_default();
                p += len + 1;
                leb(section, &mut p)?;
                if !drop_exports.iter().any(|d| d.as_bytes() == name) {
                    kept.extend_from_slice(section.get(at..p).unwrap_or_default());
                    n += 1;
                }
            }
            ensure!(p == section.len(), "malformed export section");
            let mut body = Vec::new();
            push_leb(&mut body, n);
            body.extend(kept);
            Ok(Section::Replace(body))
        }
        _ => Ok(Section::Keep),
    })?;
    let dropped = data.len() - out.len();
    Ok((out, dropped))
}

/// The module with its exports renamed: `(old, new)` pairs (the JS glue then names them
/// in a letter). Fails when an export named `old` is missing.
pub(crate) fn rename_exports(data: &[u8], renames: &[(String, String)]) -> anyhow::Result<Vec<u8>> {
    let mut found = 0;
    let out = rewrite_sections(data, |id, section| {
        if id != 7 {
            return Ok(Section::Keep);
        }
        let mut p = 0;
        let n = leb(section, &mut p)? as usize;
        let mut body = Vec::new();
        push_leb(&mut body, n);
        for _ in 0..n {
            let len = leb(section, &mut p)? as usize;
            let name = section.get(p..p + len).unwrap_or_default();
            p += len;
            let desc = p;
            p += 1;
            leb(section, &mut p)?;
            let name = match renames.iter().find(|(old, _)| old.as_bytes() == name) {
                Some((_, new)) => {
                    found += 1;
                    new.as_bytes()
                }
                None => name,
            };
            push_leb(&mut body, name.len());
            body.extend_from_slice(name);
            body.extend_from_slice(section.get(desc..p).unwrap_or_default());
        }
        ensure!(p == section.len(), "malformed export section");
        Ok(Section::Replace(body))
    })?;
    ensure!(found == renames.len(), "an export to rename is missing");
    Ok(out)
}

/// Every import moved to the module `module`, its name without wasm-bindgen's `__wbg_`
/// prefix and `_<16 hex digits>` suffix (`__wbg_now_364b6507aeb87259` → `now`): the hashes
/// are incompressible bytes in the shipped wasm, and js/core.js finds its handlers by the
/// bare names (`sdk-wasm/build` checks them with `check-glue` first). Fails on a name
/// that two imports would share.
pub(crate) fn short_imports(data: &[u8], module: &str) -> anyhow::Result<Vec<u8>> {
    rewrite_sections(data, |id, section| {
        if id != 2 {
            return Ok(Section::Keep);
        }
        let mut p = 0;
        let n = leb(section, &mut p)? as usize;
        let mut body = Vec::new();
        push_leb(&mut body, n);
        let mut names = Vec::new();
        for _ in 0..n {
            let len = leb(section, &mut p)? as usize;
            p += len;
            let len = leb(section, &mut p)? as usize;
            let name = std::str::from_utf8(section.get(p..p + len).unwrap_or_default())?;
            p += len;
            let desc = p;
            let kind = *section.get(p).unwrap_or(&0xff);
            p += 1;
            match kind {
                0 => {
                    leb(section, &mut p)?;
                }
                k => bail!("import kind {k} not handled"),
            }
            let mut short = name.strip_prefix("__wbg_").unwrap_or(name);
            if let Some((base, hash)) = short.rsplit_once('_')
                && hash.len() == 16
                && hash.bytes().all(|b| b.is_ascii_hexdigit())
            {
                short = base;
            }
            ensure!(!names.contains(&short), "two imports named {short}");
            names.push(short);
            push_leb(&mut body, module.len());
            body.extend_from_slice(module.as_bytes());
            push_leb(&mut body, short.len());
            body.extend_from_slice(short.as_bytes());
            body.extend_from_slice(section.get(desc..p).unwrap_or_default());
        }
        ensure!(p == section.len(), "malformed import section");
        Ok(Section::Replace(body))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A module with a funcref and an externref table, exporting table 0.
    fn tables() -> Vec<u8> {
        let mut m = b"\0asm\x01\0\0\0".to_vec();
        // table section: 2 tables: funcref min 1, externref min 2
        m.extend([4, 7, 2, 0x70, 0, 1, 0x6f, 0, 2]);
        // export section: "t" table 0
        m.extend([7, 5, 1, 1, b't', 1, 0]);
        m
    }

    #[test]
    fn drops_the_element_section_and_named_exports() {
        let mut m = tables();
        // element section: 1 active segment at i32.const 1 with function 0
        m.extend([9, 7, 1, 0, 0x41, 1, 0x0b, 1, 0]);
        // custom section "n"
        m.extend([0, 2, 1, b'n']);
        let (out, n) = prune(&m, &[]).unwrap();
        assert_eq!(n, 9);
        let mut want = tables();
        want.extend([0, 2, 1, b'n']);
        assert_eq!(out, want);
        assert_eq!(prune(&out, &[]).unwrap(), (want.clone(), 0), "idempotent");
        // dropping the export "t" leaves an empty export section
        let (out, n) = prune(&want, &["t".into(), "other".into()]).unwrap();
        assert_eq!(n, 4);
        let mut empty = tables();
        empty.truncate(empty.len() - 7);
        empty.extend([7, 1, 0, 0, 2, 1, b'n']);
        assert_eq!(out, empty);
        assert!(prune(b"nope", &[]).is_err());
        m.truncate(m.len() - 6);
        assert!(prune(&m, &[]).is_err(), "truncated");
    }

    #[test]
    fn shortens_import_names() {
        let mut m = b"\0asm\x01\0\0\0".to_vec();
        // import section: "./m.js" "__wbg_now_0123456789abcdef" func type 0, "./m.js" "x" func 0
        let mut body = vec![2];
        for name in ["__wbg_now_0123456789abcdef", "x"] {
            body.push(6);
            body.extend(b"./m.js");
            body.push(name.len() as u8);
            body.extend(name.as_bytes());
            body.extend([0, 0]);
        }
        m.push(2);
        m.push(body.len() as u8);
        m.extend(body);
        m.extend([0, 2, 1, b'n']);
        let out = short_imports(&m, "a").unwrap();
        let mut want = b"\0asm\x01\0\0\0".to_vec();
        want.extend([
            2, 15, 2, 1, b'a', 3, b'n', b'o', b'w', 0, 0, 1, b'a', 1, b'x', 0, 0,
        ]);
        want.extend([0, 2, 1, b'n']);
        assert_eq!(out, want);
        assert_eq!(short_imports(&out, "a").unwrap(), want, "idempotent");
        assert!(short_imports(b"nope", "a").is_err());
    }

    #[test]
    fn renames_exports() {
        let m = tables();
        let out = rename_exports(&m, &[("t".into(), "xy".into())]).unwrap();
        let mut want = tables();
        want.truncate(want.len() - 7);
        want.extend([7, 6, 1, 2, b'x', b'y', 1, 0]);
        assert_eq!(out, want);
        assert!(rename_exports(&m, &[("nope".into(), "a".into())]).is_err());
        assert_eq!(rename_exports(&m, &[]).unwrap(), m);
    }
}
