//! The dry run of a publish, before anything is copied or signed: which files will be published under which names,
//! which hidden files are left out, and which files would keep metadata after scrubbing (and what kind).
//!
//! A publisher's file names (`PXL_20251103_181502.jpg`, `IMG_4471.MOV`, a folder named after a street) and hidden
//! files (`.git`, `.DS_Store`) can identify them just as well as EXIF. So by default the published names are neutral,
//! by content type and order (`video.mp4`, `photo-1.jpg`, `photo-2.jpg`, `document.pdf`), folders are flattened, and
//! hidden entries inside folders are never published. The content type comes from the bytes, never from the name.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use kolokol_scrub::{FileKind, Inspection};

use crate::error::{ApiError, KeptMetadata};

/// One file to publish.
#[derive(Debug, Clone)]
pub(crate) struct PlannedFile {
    pub source: PathBuf,
    /// Where it goes, relative to the publication's root folder (empty for a single-file publication).
    pub dest: PathBuf,
    /// The kind the scrubber saw in the dry run; the copy checks it again (the file must not change in between).
    pub kind: FileKind,
    /// The dry run found metadata the scrubber cannot remove: the file is copied as it is (the user allowed it).
    pub keeps_metadata: bool,
}

/// The whole dry run.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    /// Name of the published file (single file) or folder.
    pub root_name: String,
    pub single_file: bool,
    pub files: Vec<PlannedFile>,
    /// Hidden files and folders left out, as the user would see them.
    pub hidden: Vec<PathBuf>,
    pub kept: Vec<KeptMetadata>,
}

/// Options of the plan.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PlanOptions {
    pub keep_names: bool,
    /// Files are published as they are (`keep_metadata`): every file keeps what it has; nothing to report.
    pub scrub: bool,
    pub max_files: usize,
}

/// Walks the sources, inspects every file and names it. Reads the files; writes nothing.
pub(crate) fn plan(
    sources: &[PathBuf],
    folder_name: &str,
    options: PlanOptions,
) -> Result<Plan, ApiError> {
    let io = |path: &Path, e: std::io::Error| ApiError::Invalid(format!("{}: {e}", path.display()));
    let single_file =
        matches!(sources, [single] if fs::metadata(single).is_ok_and(|m| m.is_file()));
    let mut walk = Walk {
        found: Vec::new(),
        hidden: Vec::new(),
        budget: options.max_files,
    };
    for source in sources {
        let name = file_name(source)?;
        // Under kept names, several sources sit side by side in the root folder; one folder is the root itself.
        let relative = match sources {
            [_] => PathBuf::new(),
            _ => PathBuf::from(name),
        };
        walk.entry(source, relative)?;
    }
    if walk.found.is_empty() {
        return Err(ApiError::Invalid(
            "nothing to publish: the folders hold only hidden files or none at all".into(),
        ));
    }
    let mut inspected = Vec::with_capacity(walk.found.len());
    let mut kept = Vec::new();
    for (source, relative) in walk.found {
        let file = fs::File::open(&source).map_err(|e| io(&source, e))?;
        let inspection = kolokol_scrub::inspect(file).map_err(|e| {
            ApiError::Invalid(format!("{}: cannot inspect it ({e})", source.display()))
        })?;
        if options.scrub
            && let Some(what) = inspection.kept
        {
            kept.push(KeptMetadata {
                file: source.display().to_string(),
                kept: what.to_owned(),
            });
        }
        inspected.push((source, relative, inspection));
    }
    let root_name = match (options.keep_names, sources) {
        (true, [single]) => file_name(single)?,
        (false, [_]) if single_file => neutral_names(&inspected).remove(0),
        _ => folder_name.to_owned(),
    };
    let names = neutral_names(&inspected);
    let files = inspected
        .into_iter()
        .zip(names)
        .map(|((source, relative, inspection), neutral)| PlannedFile {
            dest: if single_file {
                PathBuf::new()
            } else if options.keep_names {
                relative
            } else {
                PathBuf::from(neutral)
            },
            source,
            kind: inspection.kind,
            keeps_metadata: inspection.kept.is_some(),
        })
        .collect();
    Ok(Plan {
        root_name,
        single_file,
        files,
        hidden: walk.hidden,
        kept,
    })
}

struct Walk {
    /// Files found: source and path relative to the root under kept names.
    found: Vec<(PathBuf, PathBuf)>,
    hidden: Vec<PathBuf>,
    budget: usize,
}

impl Walk {
    /// Symbolic links inside folders are refused: following them could publish files the user never meant to share.
    fn entry(&mut self, source: &Path, relative: PathBuf) -> Result<(), ApiError> {
        let io =
            |path: &Path, e: std::io::Error| ApiError::Invalid(format!("{}: {e}", path.display()));
        let meta = fs::metadata(source).map_err(|e| io(source, e))?;
        if meta.is_file() {
            if self.budget == 0 {
                return Err(ApiError::Invalid(format!(
                    "too many files: a publication holds at most {}",
                    kolokol_core::record::MAX_FILES
                )));
            }
            self.budget -= 1;
            self.found.push((source.to_path_buf(), relative));
            return Ok(());
        }
        let mut entries: Vec<_> = fs::read_dir(source)
            .map_err(|e| io(source, e))?
            .collect::<Result<_, _>>()
            .map_err(|e| io(source, e))?;
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let path = entry.path();
            let name = file_name(&path)?;
            if name.starts_with('.') {
                // `.git`, `.DS_Store`, editor back-ups: never meant for readers, and often naming their owner.
                self.hidden.push(path);
                continue;
            }
            let kind = entry.file_type().map_err(|e| io(&path, e))?;
            if kind.is_symlink() {
                return Err(ApiError::Invalid(format!(
                    "{} is a symbolic link; kolokol publishes regular files and folders only",
                    path.display()
                )));
            }
            if !kind.is_file() && !kind.is_dir() {
                return Err(ApiError::Invalid(format!(
                    "{} is not a regular file",
                    path.display()
                )));
            }
            self.entry(&path, relative.join(name))?;
        }
        Ok(())
    }
}

/// Neutral names, by category in the order of the files: `photo.jpg` when it is the only photo, else `photo-1.jpg`,
/// `photo-2.jpg`... The extension is the detected kind's, else the original one when it is short and plain.
fn neutral_names(files: &[(PathBuf, PathBuf, Inspection)]) -> Vec<String> {
    let mut totals: BTreeMap<&str, usize> = BTreeMap::new();
    for (_, _, inspection) in files {
        *totals.entry(inspection.category).or_default() += 1;
    }
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    files
        .iter()
        .map(|(source, _, inspection)| {
            let category = inspection.category;
            let index = seen.entry(category).or_default();
            *index += 1;
            let stem = if totals.get(category).copied().unwrap_or(0) > 1 {
                format!("{category}-{index}")
            } else {
                category.to_owned()
            };
            match inspection
                .extension
                .map(str::to_owned)
                .or_else(|| plain_extension(source))
            {
                Some(extension) => format!("{stem}.{extension}"),
                None => stem,
            }
        })
        .collect()
}

/// The file's own extension, lower-cased, if it is 1-5 ASCII letters or digits (`txt`, `md`, `mov`).
fn plain_extension(path: &Path) -> Option<String> {
    let extension = path.extension()?.to_str()?;
    (1..=5)
        .contains(&extension.len())
        .then_some(())
        .filter(|()| extension.bytes().all(|b| b.is_ascii_alphanumeric()))
        .map(|()| extension.to_ascii_lowercase())
}

/// The user-facing lines about a plan: files kept with metadata and hidden files left out.
pub(crate) fn plan_warnings(plan: &Plan) -> Vec<String> {
    let mut warnings: Vec<String> = plan
        .kept
        .iter()
        .map(|k| format!("{}: keeps {}; published as it is", k.file, k.kept))
        .collect();
    if !plan.hidden.is_empty() {
        warnings.push(hidden_line(&plan.hidden));
    }
    warnings
}

/// "left out 2 hidden files and folders: /x/.git, /x/.DS_Store" (at most ten named).
pub(crate) fn hidden_line(hidden: &[PathBuf]) -> String {
    let named: Vec<String> = hidden
        .iter()
        .take(10)
        .map(|p| p.display().to_string())
        .collect();
    let more = if hidden.len() > 10 { ", ..." } else { "" };
    format!(
        "left out {} hidden files and folders: {}{more}",
        hidden.len(),
        named.join(", ")
    )
}

/// A path's file name as UTF-8, or a clear error.
pub(crate) fn file_name(path: &Path) -> Result<String, ApiError> {
    path.file_name()
        .and_then(|n| n.to_str())
        .map(str::to_owned)
        .ok_or_else(|| {
            ApiError::Invalid(format!(
                "{} has no usable file name (it must be UTF-8)",
                path.display()
            ))
        })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn options(keep_names: bool) -> PlanOptions {
        PlanOptions {
            keep_names,
            scrub: true,
            max_files: 100,
        }
    }

    #[test]
    fn neutral_names_by_type_and_order_without_hidden_files() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("Tverskaya 3 Nov");
        fs::create_dir_all(dir.join(".git")).unwrap();
        fs::write(dir.join(".git/config"), "[user]\nname = Anna").unwrap();
        fs::write(dir.join(".DS_Store"), [0u8, 1, 2]).unwrap();
        fs::write(
            dir.join("IMG_4471.JPG"),
            kolokol_scrub::fixtures::jpeg_with_gps(),
        )
        .unwrap();
        fs::write(
            dir.join("PXL_2025.jpg"),
            kolokol_scrub::fixtures::jpeg_with_gps(),
        )
        .unwrap();
        fs::write(
            dir.join("clip.MOV"),
            kolokol_scrub::fixtures::mp4_with_location(),
        )
        .unwrap();
        fs::write(dir.join("notes.TXT"), "встреча").unwrap();
        fs::write(dir.join("Anna's CV.pdf"), "%PDF-1.4\n%%EOF\n").unwrap();
        fs::write(
            dir.join("interview.ogg"),
            kolokol_scrub::fixtures::ogg_with_artist(true, false).0,
        )
        .unwrap();
        fs::write(dir.join("interview.bin"), b"\0\x01\x02 Anna").unwrap();

        let plan = plan(std::slice::from_ref(&dir), "March", options(false)).unwrap();
        assert_eq!(plan.root_name, "March");
        let names: Vec<_> = plan
            .files
            .iter()
            .map(|f| f.dest.display().to_string())
            .collect();
        assert_eq!(
            names,
            [
                "document.pdf",
                "photo-1.jpg",
                "photo-2.jpg",
                "video.mp4",
                "file.bin",
                "audio.opus",
                "text.txt"
            ]
        );
        assert_eq!(plan.hidden.len(), 2, "{:?}", plan.hidden);
        assert_eq!(plan.kept.len(), 1);
        assert!(plan.kept[0].file.ends_with("interview.bin"));
        assert!(plan.kept[0].kept.contains("unknown format"));

        let kept = plan_keep(&dir);
        assert_eq!(kept.root_name, "Tverskaya 3 Nov");
        assert!(
            kept.files
                .iter()
                .any(|f| f.dest == Path::new("IMG_4471.JPG"))
        );
        assert!(kept.files.iter().all(|f| !f.dest.starts_with(".git")));
    }

    fn plan_keep(dir: &Path) -> Plan {
        plan(&[dir.to_path_buf()], "March", options(true)).unwrap()
    }

    #[test]
    fn a_single_file_gets_a_neutral_name() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("IMG_4471.JPG");
        fs::write(&file, kolokol_scrub::fixtures::jpeg_with_gps()).unwrap();
        let plan = plan(&[file], "t", options(false)).unwrap();
        assert!(plan.single_file);
        assert_eq!(plan.root_name, "photo.jpg");
        assert!(plan.kept.is_empty());
    }

    #[test]
    fn a_folder_of_only_hidden_files_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(tmp.path().join(".DS_Store"), [0u8]).unwrap();
        assert!(plan(&[tmp.path().to_path_buf()], "t", options(false)).is_err());
    }
}
