//! Safe object keys for browser uploads: `<prefix>/YYYY/MM/<random>-<sanitised filename>`.
//! A filename from a browser is untrusted: it may carry a path, `..`, control characters or
//! anything else. Sanitising keeps the last path part, only the characters `A-Z a-z 0-9 . _ -`
//! (anything else becomes `-`), never a leading dot or a `..`, the extension, and at most
//! `MAX_NAME_BYTES` bytes.

/// The longest sanitised filename, in bytes (the key adds the prefix, date and random part).
pub const MAX_NAME_BYTES: usize = 100;
/// The longest extension kept, dot included.
const MAX_EXTENSION_BYTES: usize = 16;

fn safe(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')
}

/// The filename made safe to put in a key; never empty.
pub fn sanitise(name: &str) -> String {
    let last = name.rsplit(['/', '\\']).next().unwrap_or("");
    let mut out = String::with_capacity(last.len().min(MAX_NAME_BYTES));
    for c in last.chars().filter(|c| !c.is_control()) {
        let c = if safe(c) { c } else { '-' };
        // No runs of separators, and so never "..": a dot takes the place of dashes before it,
        // and a separator after a dot (or a dash after a dash) is dropped.
        if c == '.' {
            while out.ends_with('-') {
                out.pop();
            }
        }
        if (c == '.' || c == '-') && (out.ends_with('.') || (c == '-' && out.ends_with('-'))) {
            continue;
        }
        out.push(c);
    }
    let trimmed = out.trim_start_matches(['.', '-']).trim_end_matches('-');
    let (stem, ext) = match trimmed.rfind('.') {
        Some(i) if i > 0 && trimmed.len() - i <= MAX_EXTENSION_BYTES && i + 1 < trimmed.len() => {
            (&trimmed[..i], &trimmed[i..])
        }
        _ => (trimmed, ""),
    };
    let stem = stem.trim_end_matches(['.', '-']);
    let stem = if stem.is_empty() { "file" } else { stem };
    // Only ASCII is left, so any byte index is a character boundary.
    let keep = MAX_NAME_BYTES.saturating_sub(ext.len()).min(stem.len());
    let stem = stem[..keep].trim_end_matches(['.', '-']);
    let stem = if stem.is_empty() { "file" } else { stem };
    format!("{stem}{ext}")
}

/// A key prefix given by the caller: `/`-separated parts of safe characters, none of them
/// empty, `.` or `..`. Returned without leading or trailing `/`.
pub fn check_prefix(prefix: &str) -> Result<String, String> {
    let p = prefix.trim_matches('/');
    if p.is_empty() {
        return Ok(String::new());
    }
    for part in p.split('/') {
        if part.is_empty() || part == "." || part == ".." || part.contains("..") {
            return Err(format!("prefix {prefix:?} has an empty, '.' or '..' part"));
        }
        if !part.chars().all(safe) {
            return Err(format!(
                "prefix {prefix:?} may hold only A-Z a-z 0-9 . _ - and /"
            ));
        }
    }
    if p.len() > 256 {
        return Err("prefix is longer than 256 bytes".into());
    }
    Ok(p.to_owned())
}

/// The key of a new upload: `<prefix>/YYYY/MM/<random>-<name>`.
pub fn upload_key(prefix: &str, now: chrono::DateTime<chrono::Utc>, filename: &str) -> String {
    let random = format!("{:016x}", rand::random::<u64>());
    let date = now.format("%Y/%m");
    let name = sanitise(filename);
    if prefix.is_empty() {
        format!("{date}/{random}-{name}")
    } else {
        format!("{prefix}/{date}/{random}-{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn names_keep_their_extension_and_lose_their_path() {
        assert_eq!(sanitise("../../etc/passwd"), "passwd");
        assert_eq!(sanitise("C:\\Users\\me\\My Photo.PNG"), "My-Photo.PNG");
        assert_eq!(sanitise(".bashrc"), "bashrc");
        assert_eq!(sanitise("a..b...c.tar.gz"), "a.b.c.tar.gz");
        assert_eq!(sanitise("résumé 2026.pdf"), "r-sum-2026.pdf");
        assert_eq!(sanitise(""), "file");
        assert_eq!(sanitise("..."), "file");
        assert_eq!(sanitise("bad\u{0}\n\u{7f}name.txt"), "badname.txt");
        // Found by the property test: a dash between two dots must not leave "..".
        assert_eq!(sanitise("a.ꟲ.A."), "a.A");
        let long = format!("{}.jpeg", "x".repeat(500));
        let s = sanitise(&long);
        assert_eq!(s.len(), MAX_NAME_BYTES);
        assert!(s.ends_with(".jpeg"));
    }

    #[test]
    fn prefixes_are_checked_not_rewritten() {
        assert_eq!(
            check_prefix("/avatars/user-1/").as_deref(),
            Ok("avatars/user-1")
        );
        assert!(check_prefix("a/../b").is_err());
        assert!(check_prefix("a//b").is_err());
        assert!(check_prefix("a b").is_err());
    }

    #[test]
    fn keys_are_dated_and_random() {
        let now = chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default();
        let a = upload_key("uploads", now, "x.png");
        let b = upload_key("uploads", now, "x.png");
        assert!(a.starts_with("uploads/2027/01/"), "{a}");
        assert!(a.ends_with("-x.png"));
        assert_ne!(a, b);
    }

    proptest! {
        #[test]
        fn no_sanitised_name_escapes_its_place(name in any::<String>()) {
            let s = sanitise(&name);
            prop_assert!(!s.is_empty());
            prop_assert!(!s.contains('/'));
            prop_assert!(!s.contains('\\'));
            prop_assert!(!s.contains(".."));
            prop_assert!(!s.starts_with('.'));
            prop_assert!(!s.chars().any(char::is_control));
            prop_assert!(s.len() <= MAX_NAME_BYTES);
            prop_assert!(s.chars().all(safe));
        }

        #[test]
        fn path_like_names_stay_safe(parts in proptest::collection::vec("[./\\\\a-z\\x00-\\x1f ]{0,12}", 0..8)) {
            let s = sanitise(&parts.join("/"));
            prop_assert!(!s.contains('/') && !s.contains("..") && s.len() <= MAX_NAME_BYTES);
        }
    }
}
