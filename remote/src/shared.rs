//! Folder remotes on network file systems (NFS, SMB/CIFS, SSHFS).
//!
//! The protocol reads the newest ref record and the garbage-collection leases by listing a
//! folder, and relies on a listing showing what other machines wrote just before. A network
//! file system's client may serve a folder's listing (and "no such file") from its attribute
//! cache for up to a minute, so machines sharing such a folder could miss each other's pushes,
//! and a collection could miss a push's lease. Such a folder is refused unless it is mounted
//! with the options that turn that cache off, or the remote is configured with
//! `allow_network_fs=true` (docs/protocol.md, section 2; README, "Shared folders").
//!
//! The mount is found in the kernel's mount table (`/proc/self/mountinfo`; Linux). On other
//! systems no mount is recognised and folders are taken as local.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The remote option that accepts a folder on a network file system as it is mounted.
pub const ALLOW_NETWORK_FS: &str = "allow_network_fs";

/// A mounted file system, as the mount table describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// Where it is mounted.
    pub point: PathBuf,
    /// Its type (`nfs4`, `cifs`, `ext4`, ...).
    pub fstype: String,
    /// Its mount options and the file system's own options, together.
    pub options: Vec<String>,
}

impl Mount {
    fn has(&self, option: &str) -> bool {
        self.options.iter().any(|o| o == option)
    }

    fn value(&self, key: &str) -> Option<&str> {
        self.options
            .iter()
            .find_map(|o| o.strip_prefix(key)?.strip_prefix('='))
    }
}

/// What a mount means for a folder remote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// A local file system (or a network one whose clients see each other's writes at once).
    Fresh,
    /// A network file system whose listings may be served from a cache: the options that
    /// make it safe.
    MayBeStale { fix: &'static str },
}

/// Judges a mount by its type and options.
pub fn judge(mount: &Mount) -> Verdict {
    match mount.fstype.as_str() {
        "nfs" | "nfs4" => {
            let no_dir_cache = mount.has("noac")
                || (mount.value("acdirmin") == Some("0") && mount.value("acdirmax") == Some("0"));
            let no_lookup_cache = mount.value("lookupcache") == Some("none");
            if no_dir_cache && no_lookup_cache {
                Verdict::Fresh
            } else {
                Verdict::MayBeStale {
                    fix: "mount it with -o noac,lookupcache=none (or actimeo=0,lookupcache=none)",
                }
            }
        }
        "cifs" | "smb3" | "smbfs" => {
            let no_cache =
                mount.value("actimeo") == Some("0") || mount.value("acdirmax") == Some("0");
            if no_cache {
                Verdict::Fresh
            } else {
                Verdict::MayBeStale {
                    fix: "mount it with -o actimeo=0",
                }
            }
        }
        "fuse.sshfs" => Verdict::MayBeStale {
            fix: "use another way to share it (an S3-compatible server, or NFS with noac,lookupcache=none)",
        },
        _ => Verdict::Fresh,
    }
}

/// Undoes the mount table's escapes (`\040` for a space, `\011`, `\012`, `\134`).
fn unescape(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 4 <= bytes.len() {
            let oct = &bytes[i + 1..i + 4];
            if oct.iter().all(|b| (b'0'..=b'7').contains(b)) {
                let v = oct
                    .iter()
                    .fold(0u32, |acc, b| acc * 8 + u32::from(b - b'0'));
                if let Ok(v) = u8::try_from(v) {
                    out.push(v);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The mounts a `/proc/self/mountinfo` text lists.
pub fn parse_mountinfo(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|line| {
            // ID PARENT MAJ:MIN ROOT POINT OPTIONS [OPTIONAL...] - TYPE SOURCE SUPER_OPTIONS
            let (head, tail) = line.split_once(" - ")?;
            let head: Vec<&str> = head.split(' ').collect();
            let tail: Vec<&str> = tail.split(' ').collect();
            let point = unescape(head.get(4)?);
            let mut options: Vec<String> = head.get(5)?.split(',').map(str::to_string).collect();
            if let Some(sup) = tail.get(2) {
                options.extend(sup.split(',').map(str::to_string));
            }
            Some(Mount {
                point: PathBuf::from(point),
                fstype: tail.first()?.to_string(),
                options,
            })
        })
        .collect()
}

/// The mount that holds `path`: the last-mounted one whose mount point is its longest
/// prefix.
pub fn mount_of<'m>(mounts: &'m [Mount], path: &Path) -> Option<&'m Mount> {
    let mut best: Option<&Mount> = None;
    for m in mounts {
        if path.starts_with(&m.point)
            && best.is_none_or(|b| m.point.components().count() >= b.point.components().count())
        {
            best = Some(m);
        }
    }
    best
}

/// The mount table: `/proc/self/mountinfo`, or the file `STRATA_MOUNTINFO` names (to test
/// the refusal without a network file system at hand).
fn mount_table() -> Option<String> {
    let path = std::env::var_os("STRATA_MOUNTINFO")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/proc/self/mountinfo"));
    std::fs::read_to_string(path).ok()
}

/// Refuses a folder on a network file system whose listings may be stale, unless `allowed`.
pub fn check_folder(path: &Path, url: &str, allowed: bool) -> Result<()> {
    let Some(table) = mount_table() else {
        return Ok(());
    };
    let real = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let mounts = parse_mountinfo(&table);
    let Some(mount) = mount_of(&mounts, &real) else {
        return Ok(());
    };
    match judge(mount) {
        Verdict::Fresh => Ok(()),
        Verdict::MayBeStale { .. } if allowed => {
            tracing::warn!(
                "{url} is on a network file system ({}) whose listings may lag: machines sharing it may not see each other's pushes at once",
                mount.fstype
            );
            Ok(())
        }
        Verdict::MayBeStale { fix } => Err(Error::NetworkFolder {
            url: url.to_string(),
            fstype: mount.fstype.clone(),
            mount: mount.point.display().to_string(),
            fix: fix.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str = "\
22 1 259:1 / / rw,relatime shared:1 - ext4 /dev/vda rw
40 22 0:45 / /mnt/nfs rw,relatime shared:20 - nfs4 srv:/export rw,vers=4.2,rsize=1048576,wsize=1048576,namlen=255,acregmin=3,acregmax=60,acdirmin=30,acdirmax=60,hard,proto=tcp,timeo=600,retrans=2,sec=sys
41 22 0:46 / /mnt/nfs-safe rw,relatime shared:21 - nfs4 srv:/export rw,vers=4.2,noac,acregmin=0,acregmax=0,acdirmin=0,acdirmax=0,hard,lookupcache=none,proto=tcp
42 22 0:47 / /mnt/nfs-noac rw,relatime shared:22 - nfs srv:/export rw,vers=3,noac,acregmin=0,acregmax=0,acdirmin=0,acdirmax=0,hard,proto=tcp
43 22 0:48 / /mnt/smb rw,relatime shared:23 - cifs //srv/share rw,vers=3.1.1,cache=strict,uid=0,actimeo=1,closetimeo=1
44 22 0:49 / /mnt/smb\\040safe rw,relatime shared:24 - cifs //srv/share rw,vers=3.1.1,cache=strict,actimeo=0
45 40 0:50 / /mnt/nfs/local rw,relatime shared:25 - tmpfs tmpfs rw
";

    fn verdict(path: &str) -> Verdict {
        let mounts = parse_mountinfo(TABLE);
        judge(mount_of(&mounts, Path::new(path)).expect("a mount holds every path"))
    }

    #[test]
    fn a_default_nfs_mount_may_serve_stale_listings() {
        assert!(
            matches!(verdict("/mnt/nfs/repo"), Verdict::MayBeStale { fix } if fix.contains("lookupcache=none"))
        );
    }

    #[test]
    fn nfs_without_attribute_and_lookup_caches_is_fresh() {
        assert_eq!(verdict("/mnt/nfs-safe/repo"), Verdict::Fresh);
    }

    #[test]
    fn noac_alone_still_caches_lookups() {
        assert!(matches!(
            verdict("/mnt/nfs-noac/r"),
            Verdict::MayBeStale { .. }
        ));
    }

    #[test]
    fn smb_is_fresh_only_with_actimeo_zero() {
        assert!(
            matches!(verdict("/mnt/smb/r"), Verdict::MayBeStale { fix } if fix.contains("actimeo=0"))
        );
        assert_eq!(verdict("/mnt/smb safe/r"), Verdict::Fresh);
    }

    #[test]
    fn the_innermost_mount_decides() {
        assert_eq!(verdict("/mnt/nfs/local/r"), Verdict::Fresh);
        assert_eq!(verdict("/home/me/r"), Verdict::Fresh);
        // A mount point is a whole path component: /mnt/nfs-safe is not under /mnt/nfs.
        assert_eq!(verdict("/mnt/nfs-safe"), Verdict::Fresh);
    }
}
