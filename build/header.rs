//! Reading and polishing the header cbindgen generates: shared by build.rs (which writes
//! include/resock.h, the linker version script and the man pages) and by the tests that
//! check those against each other.

/// Rewrites cbindgen's output into the C a C89 or C++98 compiler accepts with -pedantic,
/// and doc comments that read as C documentation rather than rustdoc.
pub fn polish(generated: &str) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut lines = generated.lines().peekable();
    while let Some(line) = lines.next() {
        // rustdoc's "# Safety" heading becomes a "Requires:" line (the text under it says
        // which pointers must be valid, and for how long).
        if line.trim_end() == " * # Safety" {
            let mut text = String::from("Requires:");
            while let Some(next) = lines.next_if(|l| l.starts_with(" * ")) {
                text.push(' ');
                text.push_str(next[3..].trim());
            }
            out.extend(wrap(&text, 88).into_iter().map(|l| format!(" * {l}")));
            continue;
        }
        let mut line = line.to_string();
        // "In C: `name`." tells a Rust reader the C name; in the C header it is the name.
        // The note may be wrapped onto the next line, which then holds nothing else.
        if line.ends_with(" In C:")
            && lines
                .next_if(|l| l.starts_with(" * `") && l.ends_with("`."))
                .is_some()
        {
            line.truncate(line.len() - " In C:".len());
        }
        if let Some(at) = line.find(" In C: `") {
            if let Some(end) = line[at..].find("`.") {
                line.replace_range(at..at + end + 2, "");
            }
        }
        line = line.replace(" * In C these are the ", " * These are the ");
        // C89 and C++98 have no // comments and no comma after the last enumerator.
        let code = line.trim_start();
        if code.starts_with("#endif") || code.starts_with('}') {
            if let Some(at) = line.find("// ") {
                line = format!("{}/* {} */", &line[..at], line[at + 3..].trim_end());
            }
        }
        if line.starts_with("} ") && line.ends_with(';') {
            if let Some(last) = out.last_mut() {
                if last.starts_with("  ") && last.ends_with(',') {
                    last.pop();
                }
            }
        }
        out.push(line);
    }
    let mut text = out.join("\n");
    text.push('\n');
    text
}

/// `text` in lines of at most `width` characters (longer words stay whole).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = vec![String::new()];
    for word in text.split_whitespace() {
        let line = lines.last_mut().expect("never empty");
        if !line.is_empty() && line.len() + 1 + word.len() > width {
            lines.push(word.to_string());
        } else {
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
    }
    lines
}

/// One exported function as the header declares it.
pub struct Function {
    pub name: String,
    /// The declaration, joined on one line.
    pub declaration: String,
    /// The doc comment above it, without the comment markers.
    pub doc: String,
}

/// Every function the header declares, in header order, with its documentation.
pub fn functions(header: &str) -> Vec<Function> {
    let lines: Vec<&str> = header.lines().collect();
    let mut found = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let (at, line) = (i, lines[i]);
        let declares = !line.is_empty()
            && !line.starts_with([' ', '#', '/', '}', '{'])
            && !line.starts_with("typedef")
            && !line.starts_with("extern")
            && line.contains('(');
        if !declares {
            i += 1;
            continue;
        }
        let mut declaration = line.trim().to_string();
        while !declaration.ends_with(';') && i + 1 < lines.len() {
            i += 1;
            declaration.push(' ');
            declaration.push_str(lines[i].trim());
        }
        let head = &declaration[..declaration.find('(').unwrap_or(0)];
        let name = head
            .rsplit([' ', '*'])
            .next()
            .unwrap_or_default()
            .to_string();
        found.push(Function {
            name,
            declaration,
            doc: doc_above(&lines, at),
        });
        i += 1;
    }
    found
}

/// The `/** ... */` block that ends right above line `at`, without its markers.
fn doc_above(lines: &[&str], at: usize) -> String {
    if at == 0 || lines[at - 1].trim() != "*/" {
        return String::new();
    }
    let Some(open) = lines[..at - 1]
        .iter()
        .rposition(|l| l.trim_start().starts_with("/**"))
    else {
        return String::new();
    };
    lines[open + 1..at - 1]
        .iter()
        .map(|l| {
            let l = l.trim_start();
            l.strip_prefix("* ")
                .or_else(|| l.strip_prefix('*'))
                .unwrap_or(l)
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The soname's major, RESOCK_ABI_VERSION - 1 (ABI generation 1 is libresock.so.0): bumping
/// RESOCK_ABI_VERSION for an incompatible change bumps the soname and the symbol version
/// node with it, so the three cannot disagree.
pub fn soname_major(header: &str) -> u32 {
    header
        .lines()
        .find_map(|l| l.strip_prefix("#define RESOCK_ABI_VERSION "))
        .and_then(|v| v.trim().parse::<u32>().ok())
        .expect("resock.h defines RESOCK_ABI_VERSION")
        .saturating_sub(1)
}

/// The GNU ld version script that versions every function of the header as RESOCK_<major>
/// and hides everything else (the Rust runtime's symbols included).
pub fn version_script(functions: &[Function], major: u32) -> String {
    let mut script = format!(
        "/* Generated by build.rs from include/resock.h: every exported function, version\n   \
         RESOCK_{major} (the soname's major). */\nRESOCK_{major} {{\n  global:\n",
    );
    for f in functions {
        script.push_str(&format!("    {};\n", f.name));
    }
    script.push_str("  local:\n    *;\n};\n");
    script
}
