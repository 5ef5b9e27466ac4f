//! Where a command reads or writes: a file path, an object-store URL, or (with `--socket`) a
//! Plasma object id.

use std::ffi::OsStr;
use std::fmt;
use std::path::PathBuf;

use crate::error::{Result, fail};
use crate::plasma::{self, ObjectId};

/// One side of a command, as the user wrote it.
#[derive(Clone, Debug)]
pub(crate) enum Location {
    /// A local file.
    File(PathBuf),
    /// An object-store URL (`s3://`, `gs://`, `az://`, `http(s)://`, `file://`, `memory://`).
    Url(String),
    /// `plasma:` and 40 hex digits: an object of the store at `--socket`.
    Plasma(ObjectId),
}

/// The URL schemes read through the object-store backend.
const URL_SCHEMES: &[&str] = &[
    "s3", "s3a", "gs", "az", "adl", "azure", "abfs", "abfss", "http", "https", "file", "memory",
];

impl Location {
    /// Reads an argument: `plasma:ID`, `SCHEME://...` for a known scheme, else a path.
    pub(crate) fn parse(arg: &OsStr) -> Result<Location> {
        let Some(text) = arg.to_str() else {
            return Ok(Location::File(PathBuf::from(arg)));
        };
        if let Some(hex) = text.strip_prefix("plasma:") {
            return plasma::parse_id(hex).map(Location::Plasma);
        }
        if let Some((scheme, _)) = text.split_once("://") {
            if URL_SCHEMES.contains(&scheme.to_ascii_lowercase().as_str()) {
                return Ok(Location::Url(text.to_owned()));
            }
            if !scheme.is_empty()
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '+')
            {
                return fail(format!(
                    "{text}: unsupported URL scheme {scheme:?} (s3, gs, az, http, https, file, memory)"
                ));
            }
        }
        Ok(Location::File(PathBuf::from(text)))
    }

    /// Whether this names a `.npy` file (by the extension of its path).
    pub(crate) fn is_npy(&self) -> bool {
        let name = match self {
            Location::File(path) => return has_npy_extension(path.extension()),
            Location::Url(url) => url.split(['?', '#']).next().unwrap_or(url),
            Location::Plasma(_) => return false,
        };
        has_npy_extension(std::path::Path::new(name).extension())
    }
}

fn has_npy_extension(extension: Option<&OsStr>) -> bool {
    extension.is_some_and(|e| e.eq_ignore_ascii_case("npy"))
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::File(path) => write!(f, "{}", path.display()),
            Location::Url(url) => f.write_str(url),
            Location::Plasma(id) => write!(f, "plasma:{id}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_are_files_urls_or_plasma_ids() {
        let parse = |s: &str| Location::parse(OsStr::new(s));
        assert!(matches!(parse("a/b.npy").unwrap(), Location::File(_)));
        assert!(parse("a/b.npy").unwrap().is_npy());
        assert!(matches!(
            parse("s3://bucket/k.tensor").unwrap(),
            Location::Url(_)
        ));
        assert!(parse("S3://bucket/k.NPY?x=1").unwrap().is_npy());
        assert!(!parse("gs://bucket/k.tensor").unwrap().is_npy());
        let id = parse(&format!("plasma:{}", "31".repeat(20))).unwrap();
        assert_eq!(id.to_string(), format!("plasma:{}", "31".repeat(20)));
        assert!(parse("plasma:1234").is_err());
        assert!(
            parse("ftp://host/x")
                .unwrap_err()
                .to_string()
                .contains("unsupported URL scheme")
        );
        assert!(matches!(
            parse("dir://odd/name").unwrap_err(),
            crate::Error::Command { .. }
        ));
        assert!(matches!(parse("not-a-url:x").unwrap(), Location::File(_)));
    }
}
