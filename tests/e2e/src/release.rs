//! Release artifacts as users receive them: the plugin tarballs'
//! names and contents, their checksums, and the platform each binary is
//! built for, read from its executable header (ELF, Mach-O or PE) so no
//! `file` command is needed.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// The platforms a release ships the plugin for, as `<os>-<arch>`.
pub const PLATFORMS: [&str; 5] = [
    "linux-amd64",
    "linux-arm64",
    "darwin-amd64",
    "darwin-arm64",
    "windows-amd64",
];

/// What an executable's header says it runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Executable {
    pub os: &'static str,
    pub arch: &'static str,
}

fn u16_le(bytes: &[u8], at: usize) -> Option<u16> {
    let field = bytes.get(at..at + 2)?;
    Some(u16::from_le_bytes([field[0], field[1]]))
}

fn u32_le(bytes: &[u8], at: usize) -> Option<u32> {
    let field = bytes.get(at..at + 4)?;
    Some(u32::from_le_bytes([field[0], field[1], field[2], field[3]]))
}

/// The OS family and architecture of an executable, from its header:
/// ELF's `e_machine`, a 64-bit Mach-O's `cputype`, or PE's `Machine`.
pub fn executable_kind(bytes: &[u8]) -> Result<Executable, String> {
    if bytes.starts_with(b"\x7fELF") {
        // 64-bit, little-endian: what both Linux targets must be.
        if bytes.get(4) != Some(&2) || bytes.get(5) != Some(&1) {
            return Err("ELF that is not 64-bit little-endian".into());
        }
        let arch = match u16_le(bytes, 18) {
            Some(0x3e) => "amd64",
            Some(0xb7) => "arm64",
            other => return Err(format!("ELF for machine {other:?}")),
        };
        return Ok(Executable { os: "linux", arch });
    }
    if u32_le(bytes, 0) == Some(0xfeed_facf) {
        let arch = match u32_le(bytes, 4) {
            Some(0x0100_0007) => "amd64",
            Some(0x0100_000c) => "arm64",
            other => return Err(format!("Mach-O for CPU type {other:?}")),
        };
        return Ok(Executable { os: "darwin", arch });
    }
    if bytes.starts_with(b"MZ") {
        let header = u32_le(bytes, 0x3c).ok_or("PE without e_lfanew")? as usize;
        if bytes.get(header..header + 4) != Some(b"PE\0\0".as_slice()) {
            return Err("MZ without a PE signature".into());
        }
        let arch = match u16_le(bytes, header + 4) {
            Some(0x8664) => "amd64",
            Some(0xaa64) => "arm64",
            other => return Err(format!("PE for machine {other:?}")),
        };
        return Ok(Executable {
            os: "windows",
            arch,
        });
    }
    Err(format!(
        "not an ELF, Mach-O or PE executable (starts {:02x?})",
        &bytes[..bytes.len().min(4)]
    ))
}

/// The tarball's file name for a version and `<os>-<arch>` platform.
pub fn tarball_name(version: &str, platform: &str) -> String {
    format!("pulumi-resource-securepipeline-v{version}-{platform}.tar.gz")
}

/// The name of the plugin's binary inside the tarball for an OS.
pub fn binary_name(os: &str) -> &'static str {
    if os == "windows" {
        "pulumi-resource-securepipeline.exe"
    } else {
        "pulumi-resource-securepipeline"
    }
}

/// SHA-256 of a file, hex, from `sha256sum` (coreutils, as the release uses).
pub fn sha256(path: &Path) -> Result<String, String> {
    let output = Command::new("sha256sum")
        .arg(path)
        .output()
        .map_err(|err| format!("sha256sum {}: {err}", path.display()))?;
    if !output.status.success() {
        return Err(format!(
            "sha256sum {}: {}",
            path.display(),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .next()
        .map(str::to_string)
        .ok_or_else(|| format!("sha256sum {} printed nothing", path.display()))
}

/// Checks one plugin tarball: its `.sha256` names it and matches, its
/// members are exactly the binary, README.md and CHANGELOG.md at the root,
/// and the binary's header is for `platform`. Returns the unpacked binary's
/// path under `scratch`.
pub fn check_plugin_tarball(
    tarball: &Path,
    platform: &str,
    scratch: &Path,
) -> Result<PathBuf, String> {
    let name = tarball
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| format!("{} has no file name", tarball.display()))?;
    let checksum_file = tarball.with_file_name(format!("{name}.sha256"));
    let recorded = std::fs::read_to_string(&checksum_file)
        .map_err(|err| format!("{}: {err}", checksum_file.display()))?;
    let expected = format!("{}  {name}\n", sha256(tarball)?);
    if recorded != expected {
        return Err(format!(
            "{} says {recorded:?}, the tarball is {expected:?}",
            checksum_file.display()
        ));
    }

    let listing = Command::new("tar")
        .arg("-tzf")
        .arg(tarball)
        .output()
        .map_err(|err| format!("tar -tzf {name}: {err}"))?;
    if !listing.status.success() {
        return Err(format!(
            "tar -tzf {name}: {}",
            String::from_utf8_lossy(&listing.stderr)
        ));
    }
    let (os, arch) = platform
        .split_once('-')
        .ok_or_else(|| format!("platform {platform} is not <os>-<arch>"))?;
    let mut members: Vec<String> = String::from_utf8_lossy(&listing.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    members.sort();
    let mut expected_members = vec![
        "CHANGELOG.md".to_string(),
        "README.md".to_string(),
        binary_name(os).to_string(),
    ];
    expected_members.sort();
    if members != expected_members {
        return Err(format!(
            "{name} holds {members:?}, expected {expected_members:?}"
        ));
    }

    let unpacked = scratch.join(platform);
    std::fs::create_dir_all(&unpacked).map_err(|err| format!("{}: {err}", unpacked.display()))?;
    let status = Command::new("tar")
        .arg("-xzf")
        .arg(tarball)
        .arg("-C")
        .arg(&unpacked)
        .status()
        .map_err(|err| format!("tar -xzf {name}: {err}"))?;
    if !status.success() {
        return Err(format!("tar -xzf {name} failed"));
    }
    let binary = unpacked.join(binary_name(os));
    let bytes = std::fs::read(&binary).map_err(|err| format!("{}: {err}", binary.display()))?;
    let kind = executable_kind(&bytes).map_err(|err| format!("{name}: {err}"))?;
    if kind.os != os || kind.arch != arch {
        return Err(format!("{name} holds a binary for {kind:?}"));
    }
    Ok(binary)
}

/// A release host on loopback standing in for the one pluginDownloadURL
/// names: serves the files under a directory by their relative paths
/// (GET only, one request per connection) and records every path asked for.
pub struct ReleaseHost {
    pub port: u16,
    requests: Arc<Mutex<Vec<String>>>,
    stopping: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl ReleaseHost {
    pub fn serve(root: &Path) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", 0)).expect("bind the release host");
        let port = listener.local_addr().expect("release host address").port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stopping = Arc::new(AtomicBool::new(false));
        let thread = {
            let root = root.to_path_buf();
            let requests = Arc::clone(&requests);
            let stopping = Arc::clone(&stopping);
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stopping.load(Ordering::SeqCst) {
                        break;
                    }
                    if let Ok(stream) = stream {
                        if let Some(path) = answer(stream, &root) {
                            requests.lock().expect("request log").push(path);
                        }
                    }
                }
            })
        };
        Self {
            port,
            requests,
            stopping,
            thread: Some(thread),
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Every path requested so far, in order.
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().expect("request log").clone()
    }
}

impl Drop for ReleaseHost {
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        // Wakes the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Answers one GET with the file under `root` at its path, or 404. Returns
/// the path asked for; None when the request could not be read.
fn answer(stream: TcpStream, root: &Path) -> Option<String> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line).ok()?;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).ok()? == 0 || header.trim_end().is_empty() {
            break;
        }
    }
    let mut parts = request_line.split_whitespace();
    let method = parts.next()?.to_string();
    let path = parts.next()?.split('?').next()?.to_string();
    // Only plain relative names below root are served.
    let relative = path.trim_start_matches('/');
    let safe = method == "GET"
        && !relative.is_empty()
        && relative
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..");
    let body = if safe {
        std::fs::read(root.join(relative)).ok()
    } else {
        None
    };
    let mut stream = stream;
    let _ = match body {
        Some(body) => write!(
            stream,
            "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .and_then(|()| stream.write_all(&body)),
        None => write!(
            stream,
            "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        ),
    };
    Some(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn elf(machine: u16) -> Vec<u8> {
        let mut bytes = vec![0u8; 64];
        bytes[..4].copy_from_slice(b"\x7fELF");
        bytes[4] = 2;
        bytes[5] = 1;
        bytes[18..20].copy_from_slice(&machine.to_le_bytes());
        bytes
    }

    fn macho(cputype: u32) -> Vec<u8> {
        let mut bytes = vec![0u8; 32];
        bytes[..4].copy_from_slice(&0xfeed_facfu32.to_le_bytes());
        bytes[4..8].copy_from_slice(&cputype.to_le_bytes());
        bytes
    }

    fn pe(machine: u16) -> Vec<u8> {
        let mut bytes = vec![0u8; 0x90];
        bytes[..2].copy_from_slice(b"MZ");
        bytes[0x3c..0x40].copy_from_slice(&0x80u32.to_le_bytes());
        bytes[0x80..0x84].copy_from_slice(b"PE\0\0");
        bytes[0x84..0x86].copy_from_slice(&machine.to_le_bytes());
        bytes
    }

    #[test]
    fn headers_name_os_and_architecture() {
        let kind = |bytes: Vec<u8>| executable_kind(&bytes).map(|k| (k.os, k.arch));
        assert_eq!(kind(elf(0x3e)), Ok(("linux", "amd64")));
        assert_eq!(kind(elf(0xb7)), Ok(("linux", "arm64")));
        assert_eq!(kind(macho(0x0100_0007)), Ok(("darwin", "amd64")));
        assert_eq!(kind(macho(0x0100_000c)), Ok(("darwin", "arm64")));
        assert_eq!(kind(pe(0x8664)), Ok(("windows", "amd64")));
        assert_eq!(kind(pe(0xaa64)), Ok(("windows", "arm64")));
    }

    #[test]
    fn other_machines_and_formats_are_refused() {
        assert!(executable_kind(&elf(0x28)).unwrap_err().contains("machine"));
        let mut elf32 = elf(0x3e);
        elf32[4] = 1;
        assert!(executable_kind(&elf32).unwrap_err().contains("64-bit"));
        assert!(executable_kind(&macho(0x0000_0007)).is_err());
        let mut no_pe = pe(0x8664);
        no_pe[0x80] = b'X';
        assert!(executable_kind(&no_pe)
            .unwrap_err()
            .contains("PE signature"));
        assert!(executable_kind(b"#!/bin/sh\n").is_err());
        assert!(executable_kind(b"").is_err());
    }

    #[test]
    fn binary_is_named_for_its_os() {
        assert_eq!(binary_name("windows"), "pulumi-resource-securepipeline.exe");
        assert_eq!(binary_name("darwin"), "pulumi-resource-securepipeline");
        assert_eq!(
            tarball_name("1.2.3", "linux-arm64"),
            "pulumi-resource-securepipeline-v1.2.3-linux-arm64.tar.gz"
        );
    }
}
