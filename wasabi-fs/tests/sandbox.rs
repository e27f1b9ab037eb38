//! The sandbox against a real scratch directory: every escape fails, and
//! what is inside behaves like a filesystem.

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use wasabi_fs::{FsError, Mount, MountSpec, Sandbox, flags};

/// A fresh scratch directory, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("wasabi-fs-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn mount(host: &Path, spec: &str) -> Mount {
    let spec: MountSpec = format!("{}{spec}", host.display()).parse().unwrap();
    Mount::open(&spec, Path::new("/")).unwrap()
}

fn code<T: std::fmt::Debug>(r: Result<T, FsError>) -> &'static str {
    r.expect_err("the call should fail").code()
}

/// Lays out: data/{file.txt, sub/, inner -> sub, out -> ../secret,
/// abs -> /etc}, and secret/ beside data.
fn layout(name: &str) -> (Scratch, Sandbox) {
    let s = Scratch::new(name);
    let data = s.0.join("data");
    std::fs::create_dir_all(data.join("sub")).unwrap();
    std::fs::create_dir_all(s.0.join("secret")).unwrap();
    std::fs::write(s.0.join("secret/key"), "hidden").unwrap();
    std::fs::write(data.join("file.txt"), "hello").unwrap();
    symlink("sub", data.join("inner")).unwrap();
    symlink("../secret", data.join("out")).unwrap();
    symlink("/etc", data.join("abs")).unwrap();
    let fs = Sandbox::new(vec![mount(&data, ":/data")], None).unwrap();
    (s, fs)
}

#[test]
fn escapes_fail_with_clear_errors() {
    let (_s, mut fs) = layout("escape");
    // Absolute paths outside every mount do not exist.
    let e = fs.stat("/etc/passwd").unwrap_err();
    assert_eq!(e.code(), "ENOENT");
    assert!(
        e.message().contains("outside every mounted directory"),
        "{e}"
    );
    // `..` folds lexically: it cannot climb out of /data.
    assert_eq!(
        code(fs.open("/data/../../etc/passwd", flags::O_RDONLY, 0)),
        "ENOENT"
    );
    assert_eq!(code(fs.stat("../secret/key")), "ENOENT");
    assert_eq!(
        fs.readdir("/data/sub/../../..").unwrap(),
        ["data", "dev", "etc"]
    );
    // Symbolic links that lead out are refused, relative or absolute.
    let e = fs.open("/data/out/key", flags::O_RDONLY, 0).unwrap_err();
    assert_eq!(e.code(), "EACCES");
    assert!(e.message().contains("outside its mounted directory"), "{e}");
    assert_eq!(code(fs.stat("/data/abs/passwd")), "EACCES");
    assert_eq!(code(fs.stat("/data/out")), "EACCES");
    assert_eq!(code(fs.readdir("/data/abs")), "EACCES");
    // ... while the link itself can be looked at.
    assert!(fs.lstat("/data/out").unwrap().is_symlink());
    assert_eq!(fs.readlink("/data/out").unwrap(), "../secret");
    // The guest cannot make new links that lead out either.
    assert_eq!(code(fs.symlink("/etc/passwd", "/data/p")), "EPERM");
    assert_eq!(code(fs.symlink("../../secret/key", "/data/sub/k")), "EPERM");
    // An absolute target beneath the link's directory is stored relative
    // to the link; one that would need `..` is refused.
    std::fs::write(_s.0.join("data/sub/f.txt"), "f").unwrap();
    fs.symlink("/data/sub/f.txt", "/data/sub/abs-in").unwrap();
    assert_eq!(fs.readlink("/data/sub/abs-in").unwrap(), "f.txt");
    assert!(fs.stat("/data/sub/abs-in").unwrap().is_file());
    assert_eq!(
        code(fs.symlink("/data/file.txt", "/data/sub/abs-up")),
        "EPERM"
    );
    // Links that stay inside work. Inside a mount, `..` after a link is
    // resolved as POSIX does, from where the link leads.
    fs.open("/data/inner/../file.txt", flags::O_RDONLY, 0)
        .unwrap();
    std::fs::create_dir_all(_s.0.join("data/sub/deeper")).unwrap();
    symlink("sub/deeper", _s.0.join("data/deep-link")).unwrap();
    std::fs::write(_s.0.join("data/sub/here.txt"), "here").unwrap();
    assert!(fs.stat("/data/deep-link/../here.txt").unwrap().is_file());
    // A trailing slash demands a directory; `dir/.` cannot be renamed.
    assert_eq!(code(fs.stat("/data/file.txt/")), "ENOTDIR");
    assert_eq!(code(fs.stat("/data/file.txt/.")), "ENOTDIR");
    for dot in ["/data/sub/.", "/data/sub/./"] {
        let e = code(fs.rename(dot, "/data/moved"));
        assert!(e == "EBUSY" || e == "EINVAL", "{dot}: {e}");
    }
    fs.mkdir("/data/made/", 0o755).unwrap();
    assert!(fs.stat("/data/made/.").unwrap().is_dir());
    fs.symlink("../file.txt", "/data/sub/up")
        .expect_err("a link that climbs");
    fs.symlink("sub/../file.txt", "/data/down-up")
        .expect_err("a link that climbs after going down");
    fs.symlink("sub/here.txt", "/data/down").unwrap();
    let fd = fs.open("/data/down", flags::O_RDONLY, 0).unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(fs.read(fd, &mut buf, None).unwrap(), 4);
    assert_eq!(&buf[..4], b"here");
    // Nothing outside was touched.
    assert!(!_s.0.join("p").exists());
}

#[test]
fn read_only_mounts_refuse_every_change() {
    let s = Scratch::new("ro");
    std::fs::write(s.0.join("f"), "x").unwrap();
    let mut fs = Sandbox::new(vec![mount(&s.0, ":/ro:ro")], None).unwrap();
    assert_eq!(fs.cwd(), "/ro");
    for r in [
        fs.open("f", flags::O_WRONLY, 0).map(|_| ()),
        fs.open("new", flags::O_CREAT | flags::O_WRONLY, 0o644)
            .map(|_| ()),
        fs.mkdir("d", 0o755),
        fs.unlink("f"),
        fs.rename("f", "g"),
        fs.chmod("f", 0o600),
        fs.truncate("f", 0),
        fs.symlink("f", "l"),
        fs.utimes("f", 0.0, 0.0),
    ] {
        assert_eq!(code(r), "EROFS");
    }
    let fd = fs.open("f", flags::O_RDONLY, 0).unwrap();
    assert_eq!(code(fs.fchmod(fd, 0o600)), "EROFS");
    assert_eq!(code(fs.write(fd, b"y", None)), "EBADF");
    assert_eq!(std::fs::read_to_string(s.0.join("f")).unwrap(), "x");
}

#[test]
fn files_and_directories_behave_like_a_filesystem() {
    let s = Scratch::new("rw");
    let mut fs = Sandbox::new(vec![mount(&s.0, ":/w")], Some("/w")).unwrap();
    fs.mkdir("a", 0o755).unwrap();
    assert_eq!(code(fs.mkdir("a", 0o755)), "EEXIST");
    let fd = fs
        .open("a/f", flags::O_CREAT | flags::O_RDWR | flags::O_EXCL, 0o644)
        .unwrap();
    assert_eq!(
        code(fs.open(
            "a/f",
            flags::O_CREAT | flags::O_EXCL | flags::O_WRONLY,
            0o644
        )),
        "EEXIST"
    );
    assert_eq!(fs.write(fd, b"hello world", None).unwrap(), 11);
    assert_eq!(fs.write(fd, b"W", Some(6)).unwrap(), 1);
    let mut buf = [0u8; 5];
    assert_eq!(fs.read(fd, &mut buf, Some(6)).unwrap(), 5);
    assert_eq!(&buf, b"World");
    assert_eq!(fs.fstat(fd).unwrap().size, 11);
    fs.ftruncate(fd, 5).unwrap();
    fs.fsync(fd).unwrap();
    fs.fchmod(fd, 0o600).unwrap();
    assert_eq!(fs.stat("/w/a/f").unwrap().mode & 0o777, 0o600);
    fs.close(fd).unwrap();
    assert_eq!(code(fs.close(fd)), "EBADF");
    assert_eq!(code(fs.read(99, &mut buf, None)), "EBADF");

    fs.chdir("a").unwrap();
    assert_eq!(fs.cwd(), "/w/a");
    fs.rename("f", "../g").unwrap();
    fs.link("/w/g", "h").unwrap();
    fs.utimes("/w/g", 1_000_000.5, 2_000_000.0).unwrap();
    let st = fs.stat("/w/g").unwrap();
    assert_eq!((st.size, st.nlink, st.mtime_ms), (5, 2, 2_000_000_000.0));
    let mut names = fs.readdir("/w").unwrap();
    names.sort();
    assert_eq!(names, ["a", "g"]);
    assert_eq!(code(fs.rmdir("/w/a")), "ENOTEMPTY");
    fs.unlink("h").unwrap();
    fs.chdir("/").unwrap();
    fs.rmdir("/w/a").unwrap();
    assert_eq!(code(fs.rmdir("/w")), "EBUSY");
    assert_eq!(code(fs.chdir("/w/g")), "ENOTDIR");
    assert_eq!(code(fs.open("/w/x", 0o4000000, 0)), "EINVAL");
}

#[test]
fn directories_above_mounts_list_the_mount_points() {
    let (a, b) = (Scratch::new("va"), Scratch::new("vb"));
    let mut fs = Sandbox::new(
        vec![mount(&a.0, ":/srv/a"), mount(&b.0, ":/srv/b:ro")],
        Some("/"),
    )
    .unwrap();
    assert_eq!(fs.readdir("/").unwrap(), ["dev", "etc", "srv"]);
    assert_eq!(fs.readdir("/srv").unwrap(), ["a", "b"]);
    assert!(fs.stat("/srv").unwrap().is_dir());
    let fd = fs.open("/srv", flags::O_RDONLY, 0).unwrap();
    assert!(fs.fstat(fd).unwrap().is_dir());
    assert_eq!(code(fs.read(fd, &mut [0; 4], None)), "EISDIR");
    assert_eq!(code(fs.mkdir("/srv/c", 0o755)), "ENOENT");
    assert_eq!(code(fs.rmdir("/srv")), "EROFS");
    assert_eq!(code(fs.mkdir("/srv", 0o755)), "EEXIST");
    assert_eq!(code(fs.rename("/srv/a/x", "/srv/b/x")), "EROFS");
    assert_eq!(code(fs.open("/srv", flags::O_WRONLY, 0)), "EISDIR");
    // Moving between two writable mounts is a cross-device rename.
    let c = Scratch::new("vc");
    std::fs::write(a.0.join("x"), "1").unwrap();
    let fs2 = Sandbox::new(vec![mount(&a.0, ":/a"), mount(&c.0, ":/c")], None).unwrap();
    assert_eq!(code(fs2.rename("/a/x", "/c/x")), "EXDEV");
    // Bad working directories and duplicate mounts are refused up front.
    assert!(Sandbox::new(vec![mount(&a.0, ":/a")], Some("/nowhere")).is_err());
    assert!(Sandbox::new(vec![mount(&a.0, ":/a"), mount(&c.0, ":/a")], None).is_err());
}

#[test]
fn dev_null_and_etc_hosts_exist_everywhere() {
    let mut fs = Sandbox::empty();
    assert_eq!(fs.readdir("/").unwrap(), ["dev", "etc"]);
    let null = fs.open("/dev/null", flags::O_RDWR, 0).unwrap();
    assert_eq!(fs.write(null, b"gone", None).unwrap(), 4);
    assert_eq!(fs.read(null, &mut [0; 8], None).unwrap(), 0);
    let hosts = fs.open("/etc/hosts", flags::O_RDONLY, 0).unwrap();
    let mut buf = [0u8; 10];
    assert_eq!(fs.read(hosts, &mut buf, None).unwrap(), 10);
    assert_eq!(&buf, b"127.0.0.1 ");
    assert!(fs.stat("/etc/hosts").unwrap().is_file());
    assert_eq!(code(fs.open("/etc/hosts", flags::O_WRONLY, 0)), "EROFS");
    assert_eq!(code(fs.unlink("/dev/null")), "EROFS");
    assert_eq!(code(fs.stat("/etc/passwd")), "ENOENT");
}

#[test]
fn open_files_are_capped() {
    let s = Scratch::new("cap");
    std::fs::write(s.0.join("f"), "x").unwrap();
    let mut fs = Sandbox::new(vec![mount(&s.0, ":/m")], None)
        .unwrap()
        .with_max_files(2);
    let a = fs.open("f", 0, 0).unwrap();
    fs.open("f", 0, 0).unwrap();
    assert_eq!(code(fs.open("f", 0, 0)), "EMFILE");
    fs.close(a).unwrap();
    fs.open("f", 0, 0).unwrap();
    assert_eq!(fs.open_files(), 2);
}

/// Every symbolic link under `dir` on the host, resolved by the host (as
/// any host program reading the directory would), stays inside `root`.
fn assert_no_link_leads_out(root: &Path, dir: &Path) {
    let root = std::fs::canonicalize(root).unwrap();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let meta = std::fs::symlink_metadata(&path).unwrap();
        if meta.file_type().is_symlink() {
            if let Ok(resolved) = std::fs::canonicalize(&path) {
                assert!(
                    resolved.starts_with(&root),
                    "{} -> {} leads outside {}",
                    path.display(),
                    resolved.display(),
                    root.display()
                );
            }
        } else if meta.is_dir() {
            assert_no_link_leads_out(&root, &path);
        }
    }
}

/// The probe's findings: a link checked only when made led out after a
/// rename (or a hard link) to a shallower directory, and a chain of `..`
/// links through new directories reached the host's `/`.
#[test]
fn no_sequence_of_guest_operations_leaves_a_link_that_leads_out() {
    let s = Scratch::new("links-move");
    let data = s.0.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let fs = Sandbox::new(vec![mount(&data, ":/data")], None).unwrap();
    // Made in /data/sub, then moved up: refused at birth.
    fs.mkdir("/data/sub", 0o755).unwrap();
    assert_eq!(code(fs.symlink("../x", "/data/sub/l")), "EPERM");
    // The chain: each link one level up, through new directories.
    fs.mkdir("/data/a", 0o755).unwrap();
    fs.mkdir("/data/a/b", 0o755).unwrap();
    assert_eq!(code(fs.symlink("..", "/data/a/b/up")), "EPERM");
    assert_eq!(code(fs.symlink("../..", "/data/a/b/up2")), "EPERM");
    assert_eq!(code(fs.symlink("./../b", "/data/a/b/up3")), "EPERM");
    // Links that lead down stay inside wherever they go.
    fs.mkdir("/data/a/b/c", 0o755).unwrap();
    fs.symlink("c", "/data/a/b/down").unwrap();
    fs.symlink("down/../../..", "/data/a/b/trick")
        .expect_err("climbing after a link");
    fs.rename("/data/a/b/down", "/data/down").unwrap();
    fs.link("/data/down", "/data/a/down-again").unwrap();
    fs.rename("/data/a/b", "/data/b").unwrap();
    fs.symlink("/data/b/c", "/data/abs").unwrap();
    assert_eq!(fs.readlink("/data/abs").unwrap(), "b/c");
    fs.rename("/data/abs", "/data/b/c/abs").unwrap();
    assert_no_link_leads_out(&data, &data);
    // A link the host made that climbs is not moved or linked elsewhere.
    std::fs::create_dir_all(data.join("deep/er")).unwrap();
    symlink("../../x", data.join("deep/er/host-made")).unwrap();
    assert_eq!(
        code(fs.rename("/data/deep/er/host-made", "/data/h")),
        "EPERM"
    );
    assert_eq!(code(fs.link("/data/deep/er/host-made", "/data/h")), "EPERM");
    assert!(!data.join("h").exists());
}

/// `--dir box:/data --dir box/conf:/data/conf:ro`: the guest linked
/// `/data/alias -> conf` and wrote through it into the read-only
/// directory. A read-only mount inside a read-write one is refused when the
/// sandbox is made, however the host paths are spelt.
#[test]
fn a_read_only_mount_inside_a_writable_one_is_refused() {
    let s = Scratch::new("ro-nested");
    let boxed = s.0.join("box");
    std::fs::create_dir_all(boxed.join("conf/deeper")).unwrap();
    std::fs::create_dir_all(s.0.join("elsewhere")).unwrap();
    symlink(&boxed, s.0.join("alias")).unwrap();
    let refused = |mounts: Vec<Mount>| match Sandbox::new(mounts, None) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("accepted"),
    };
    for inner in ["box/conf", "box/conf/deeper", "box", "alias/conf"] {
        let err = refused(vec![
            mount(&boxed, ":/data"),
            mount(&s.0.join(inner), ":/data/conf:ro"),
        ]);
        assert!(
            err.contains("/data/conf is mounted read-only"),
            "{inner}: {err}"
        );
        assert!(err.contains("read-write mount at /data"), "{inner}: {err}");
    }
    // Disjoint directories, and a writable mount inside a read-only one,
    // are fine: the read-only one cannot be changed through the other.
    Sandbox::new(
        vec![
            mount(&boxed, ":/data"),
            mount(&s.0.join("elsewhere"), ":/data/conf:ro"),
        ],
        None,
    )
    .unwrap();
    Sandbox::new(
        vec![
            mount(&boxed, ":/data:ro"),
            mount(&boxed.join("conf"), ":/data/conf"),
        ],
        None,
    )
    .unwrap();
}

/// The guest saw the host's real uid, gid, device and inode numbers. It
/// sees fixed ids and keyed hashes instead: stable and distinct, so
/// `os.SameFile` and hard links still work.
#[test]
fn stat_shows_fixed_ids_and_hides_host_inodes() {
    use std::os::unix::fs::MetadataExt;
    let s = Scratch::new("ids");
    std::fs::write(s.0.join("a"), "a").unwrap();
    std::fs::write(s.0.join("b"), "b").unwrap();
    std::fs::hard_link(s.0.join("a"), s.0.join("a2")).unwrap();
    let mut fs = Sandbox::new(vec![mount(&s.0, ":/d")], None).unwrap();
    let host = std::fs::metadata(s.0.join("a")).unwrap();
    let a = fs.stat("/d/a").unwrap();
    assert_eq!(
        (a.uid, a.gid),
        (wasabi_fs::stat::guest_uid(), wasabi_fs::stat::guest_gid())
    );
    assert_ne!(a.ino, host.ino());
    assert_ne!(a.dev, host.dev());
    assert!(a.ino < 1 << 53, "an inode number a JS number holds exactly");
    assert_eq!(fs.stat("/d/a").unwrap().ino, a.ino, "stable");
    assert_eq!(
        fs.lstat("/d/a2").unwrap().ino,
        a.ino,
        "a hard link is the same file"
    );
    assert_ne!(fs.stat("/d/b").unwrap().ino, a.ino, "another file differs");
    let fd = fs.open("/d/a", flags::O_RDONLY, 0).unwrap();
    assert_eq!(fs.fstat(fd).unwrap().ino, a.ino);
    // Another sandbox (another tenant) sees other numbers.
    let other = Sandbox::new(vec![mount(&s.0, ":/d")], None).unwrap();
    assert_ne!(other.stat("/d/a").unwrap().ino, a.ino);
}

/// Two names that are not UTF-8 read alike once made lossy, and the guest
/// would open the wrong one. They are not listed.
#[test]
fn names_that_are_not_utf8_are_not_listed() {
    use std::os::unix::ffi::OsStrExt;
    let s = Scratch::new("utf8");
    for raw in [&b"bad-\xff"[..], &b"bad-\xfe"[..], &b"good"[..]] {
        std::fs::write(s.0.join(std::ffi::OsStr::from_bytes(raw)), "x").unwrap();
    }
    let fs = Sandbox::new(vec![mount(&s.0, ":/d")], None).unwrap();
    assert_eq!(fs.readdir("/d").unwrap(), ["good"]);
}

/// A stranger's link targets: dot tricks, names that only look like `..`,
/// empty components. Only those that climb are refused.
#[test]
fn odd_link_targets_are_judged_by_their_components() {
    let s = Scratch::new("link-odd");
    std::fs::create_dir_all(s.0.join("d/sub")).unwrap();
    let fs = Sandbox::new(vec![mount(&s.0.join("d"), ":/d")], None).unwrap();
    for (i, target) in ["...", "..a", "sub//x", "./sub", "sub/.", "."]
        .iter()
        .enumerate()
    {
        fs.symlink(target, &format!("/d/ok{i}"))
            .unwrap_or_else(|e| panic!("{target:?}: {e}"));
    }
    for (i, target) in [
        "..",
        "sub/..",
        "sub/../..",
        "./..",
        "sub/./../..",
        "/d/../x",
    ]
    .iter()
    .enumerate()
    {
        assert_eq!(
            code(fs.symlink(target, &format!("/d/sub/bad{i}"))),
            "EPERM",
            "{target:?}"
        );
    }
    assert_eq!(code(fs.symlink("", "/d/empty")), "EINVAL");
    assert_eq!(code(fs.symlink("a\0b", "/d/nul")), "EINVAL");
    assert_no_link_leads_out(&s.0.join("d"), &s.0.join("d"));
}
