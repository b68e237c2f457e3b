//! Records as they arrive: the documents of standard input or of files,
//! each handed on as soon as its last byte is read, so that a command can
//! write what a record means while the records after it are still being
//! written (`tap.sh --follow | tap pcap --out -`).

use serde_json::Value;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

/// The files `paths` name: a directory means its `*.json` and `*.jsonl`
/// files, in name order.
pub fn files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(|e| format!("{}: {e}", path.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "json" || x == "jsonl"))
                .collect();
            found.sort();
            files.extend(found);
        } else {
            files.push(path.clone());
        }
    }
    Ok(files)
}

/// Standard input without `paths`, else their files one after another
/// (each opened now, so that a missing one is reported before any output).
pub fn open(paths: &[PathBuf]) -> Result<Box<dyn Read>, String> {
    if paths.is_empty() {
        return Ok(Box::new(std::io::stdin()));
    }
    let mut reader: Box<dyn Read> = Box::new(std::io::empty());
    for file in files(paths)? {
        let opened = open_file(&file)?;
        // A file whose last record lacks its line break still ends it.
        reader = Box::new(reader.chain(opened).chain(&b"\n"[..]));
    }
    Ok(reader)
}

fn open_file(file: &Path) -> Result<std::fs::File, String> {
    std::fs::File::open(file).map_err(|e| format!("{}: {e}", file.display()))
}

/// The JSON documents of a reader, one at a time: JSON lines or
/// pretty-printed documents one after another. A document that is not JSON
/// ends the stream with its error (`document N: ...`): what follows it
/// cannot be told apart from it.
pub struct Documents {
    inner: serde_json::StreamDeserializer<
        'static,
        serde_json::de::IoRead<BufReader<Box<dyn Read>>>,
        Value,
    >,
    read: usize,
    failed: bool,
}

impl Documents {
    pub fn new(reader: Box<dyn Read>) -> Documents {
        Documents {
            inner: serde_json::Deserializer::from_reader(BufReader::new(reader)).into_iter(),
            read: 0,
            failed: false,
        }
    }

    /// The number of the last document read (how many were read).
    pub fn number(&self) -> usize {
        self.read
    }
}

impl Iterator for Documents {
    type Item = Result<Value, String>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let next = self.inner.next()?;
        self.read += 1;
        Some(next.map_err(|e| {
            self.failed = true;
            format!("document {}: {e}", self.read)
        }))
    }
}
