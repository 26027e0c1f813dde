//! The version stamp: a fixed-size byte area in the binary (`crate::VERSION_STAMP`) that
//! `packaging/build.sh --version V` overwrites in place, so one compiled binary can be
//! packaged as several versions (tests build a "newer" tarball without recompiling). The
//! area is [`MARKER`] followed by the version padded with NUL bytes; all NUL means "not
//! stamped" and the crate version applies. Pure functions only; reading a file's stamp is
//! [`read_file`].

/// Total size of the stamp area.
pub const STAMP_LEN: usize = 64;
/// Bytes reserved for the version text after the marker.
pub const MAX_VERSION_LEN: usize = STAMP_LEN - MARKER_LEN;
const MARKER_LEN: usize = 18;
const MASK: u8 = 0x5a;
/// The marker `OMP-VERSION-STAMP:` (what `packaging/build.sh` searches for) XOR [`MASK`].
/// Kept masked in the code so the plain marker occurs exactly once in a binary: in the
/// stamp area itself.
const MARKER_MASKED: [u8; MARKER_LEN] = mask(*b"OMP-VERSION-STAMP:");

const fn mask(b: [u8; MARKER_LEN]) -> [u8; MARKER_LEN] {
    let mut out = [0u8; MARKER_LEN];
    let mut i = 0;
    while i < MARKER_LEN {
        out[i] = b[i] ^ MASK;
        i += 1;
    }
    out
}

/// The marker bytes, unmasked at run time.
fn marker() -> [u8; MARKER_LEN] {
    mask(std::hint::black_box(MARKER_MASKED))
}

/// An unstamped area: the marker then zeros. `const` so it lands in the file image.
pub const fn blank() -> [u8; STAMP_LEN] {
    let m = mask(MARKER_MASKED);
    let mut out = [0u8; STAMP_LEN];
    let mut i = 0;
    while i < MARKER_LEN {
        out[i] = m[i];
        i += 1;
    }
    out
}

/// A version string fit for a stamp and a file name: `1.2.3`, `1.2.3-rc.1`, `1.2.3+build`.
pub fn check_version(v: &str) -> Result<(), String> {
    let mut core = v.split(['-', '+']).next().unwrap_or("").split('.');
    let numeric = |p: Option<&str>| {
        p.is_some_and(|p| !p.is_empty() && p.len() <= 9 && p.bytes().all(|b| b.is_ascii_digit()))
    };
    let ok = numeric(core.next())
        && numeric(core.next())
        && numeric(core.next())
        && core.next().is_none()
        && v.len() <= MAX_VERSION_LEN
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-+".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "bad version {v:?}: use MAJOR.MINOR.PATCH with an optional -suffix, at most {MAX_VERSION_LEN} characters"
        ))
    }
}

/// The stamped version in a stamp area, None when blank or damaged.
pub fn parse(area: &[u8]) -> Option<&str> {
    if area.len() < STAMP_LEN || area[..MARKER_LEN] != marker() {
        return None;
    }
    let text = &area[MARKER_LEN..STAMP_LEN];
    let end = text.iter().position(|&b| b == 0).unwrap_or(text.len());
    let v = std::str::from_utf8(&text[..end]).ok()?;
    check_version(v).ok().map(|_| v)
}

/// Offsets of every stamp area in a file image.
pub fn find(image: &[u8]) -> Vec<usize> {
    let m = marker();
    image
        .windows(MARKER_LEN)
        .enumerate()
        .filter(|(_, w)| *w == m)
        .map(|(i, _)| i)
        .filter(|&i| i + STAMP_LEN <= image.len())
        .collect()
}

/// Writes `version` into the one stamp area of `image`.
pub fn apply(image: &mut [u8], version: &str) -> Result<(), String> {
    check_version(version)?;
    let at = match find(image).as_slice() {
        [one] => *one,
        [] => return Err("no version stamp area in this binary (not an omp binary?)".into()),
        _ => return Err("more than one version stamp area in this binary".into()),
    };
    let area = &mut image[at + MARKER_LEN..at + STAMP_LEN];
    area.fill(0);
    area[..version.len()].copy_from_slice(version.as_bytes());
    Ok(())
}

/// The version an `omp` binary on disk reports: its stamp, or None when unstamped (then
/// it reports the version it was compiled as, which this function cannot know).
pub fn read_file(path: &std::path::Path) -> std::io::Result<Option<String>> {
    let image = std::fs::read(path)?;
    Ok(find(&image)
        .first()
        .and_then(|&at| parse(&image[at..]))
        .map(str::to_string))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamp_round_trip() {
        let mut image = vec![7u8; 100];
        image.extend_from_slice(&blank());
        image.extend_from_slice(&[9u8; 50]);
        assert_eq!(find(&image), vec![100]);
        assert_eq!(parse(&image[100..]), None);
        apply(&mut image, "1.2.3-rc.1").unwrap();
        assert_eq!(parse(&image[100..]), Some("1.2.3-rc.1"));
        apply(&mut image, "2.0.0").unwrap();
        assert_eq!(parse(&image[100..]), Some("2.0.0"));
        assert_eq!(&image[100 + STAMP_LEN..], &[9u8; 50][..]);
    }

    #[test]
    fn stamp_refusals() {
        let mut none = vec![0u8; 200];
        assert!(
            apply(&mut none, "1.0.0")
                .unwrap_err()
                .contains("no version")
        );
        let mut two = blank().to_vec();
        two.extend_from_slice(&blank());
        assert!(
            apply(&mut two, "1.0.0")
                .unwrap_err()
                .contains("more than one")
        );
        for bad in [
            "",
            "1",
            "1.2",
            "1.2.x",
            "1.2.3 ",
            "1.2.3/..",
            &"1.2.3-".repeat(20),
        ] {
            assert!(check_version(bad).is_err(), "{bad:?}");
        }
        for ok in ["0.1.0", "10.20.30", "1.2.3-rc.1", "1.2.3+g1234"] {
            assert!(check_version(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn this_binary_reports_a_version() {
        assert!(check_version(crate::version()).is_ok());
    }
}
