//go:build integration

package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Each tool of the compatibility suite (tools_test.go): what it does on
// the mount, as its users run it, and how a fresh mount proves it whole.

func resticTool() tool {
	repo := func(c *toolCase) string { return filepath.Join(c.mnt, "repo") }
	return tool{
		name: "restic",
		write: func(t *testing.T, c *toolCase) {
			c.env = append(c.env, "RESTIC_PASSWORD=a passphrase for the test repository")
			c.run(t, c.scratch, "restic", "-r", repo(c), "init")
			c.run(t, c.scratch, "restic", "-r", repo(c), "backup", c.src)
			changeTree(t, c.src)
			c.run(t, c.scratch, "restic", "-r", repo(c), "backup", c.src)
			c.run(t, c.scratch, "restic", "-r", repo(c), "forget", "--keep-last", "1", "--prune")
			c.run(t, c.scratch, "restic", "-r", repo(c), "check", "--read-data")
			c.want = treeSums(t, c.src)
		},
		check: func(t *testing.T, c *toolCase) {
			out := filepath.Join(c.scratch, "restore")
			c.run(t, c.scratch, "restic", "-r", repo(c), "restore", "latest", "--target", out)
			sameTree(t, "restic restore", treeSums(t, filepath.Join(out, c.src)), c.want)
		},
	}
}

func borgTool() tool {
	repo := func(c *toolCase) string { return filepath.Join(c.mnt, "repo") }
	return tool{
		name: "borg",
		write: func(t *testing.T, c *toolCase) {
			// The fresh mount is at another path: borg asks before using
			// a repository that moved.
			c.env = append(c.env, "BORG_PASSPHRASE=a passphrase for the test repository",
				"BORG_RELOCATED_REPO_ACCESS_IS_OK=yes")
			dir := filepath.Dir(c.src) // archives hold src/...
			c.run(t, dir, "borg", "init", "-e", "repokey-blake2", repo(c))
			c.run(t, dir, "borg", "create", repo(c)+"::one", "src")
			changeTree(t, c.src)
			c.run(t, dir, "borg", "create", repo(c)+"::two", "src")
			c.run(t, dir, "borg", "check", "--verify-data", repo(c))
			c.run(t, dir, "borg", "prune", "--keep-last", "1", repo(c))
			c.run(t, dir, "borg", "compact", repo(c))
			c.want = treeSums(t, c.src)
		},
		check: func(t *testing.T, c *toolCase) {
			c.run(t, c.scratch, "borg", "check", repo(c))
			c.run(t, c.scratch, "borg", "extract", repo(c)+"::two")
			sameTree(t, "borg extract", treeSums(t, filepath.Join(c.scratch, "src")), c.want)
		},
	}
}

func duplicityTool() tool {
	url := func(c *toolCase) string { return "file://" + filepath.Join(c.mnt, "backup") }
	// Déjà Dup's engine, without its GnuPG layer: the bucket is encrypted.
	opts := func(c *toolCase) []string {
		return []string{"--no-encryption", "--name", "test", "--archive-dir", filepath.Join(c.scratch, "archive")}
	}
	return tool{
		name: "duplicity",
		write: func(t *testing.T, c *toolCase) {
			dup := func(args ...string) { c.run(t, c.scratch, "duplicity", append(args, opts(c)...)...) }
			dup("full", c.src, url(c))
			changeTree(t, c.src)
			dup("incremental", c.src, url(c))
			dup("verify", "--compare-data", url(c), c.src)
			c.want = treeSums(t, c.src)
		},
		check: func(t *testing.T, c *toolCase) {
			out := filepath.Join(c.scratch, "restore")
			c.run(t, c.scratch, "duplicity", append([]string{"restore", url(c), out}, opts(c)...)...)
			sameTree(t, "duplicity restore", treeSums(t, out), c.want)
		},
	}
}

func rsyncTool() tool {
	dst := func(c *toolCase) string { return filepath.Join(c.mnt, "tree") + "/" }
	return tool{
		name: "rsync",
		write: func(t *testing.T, c *toolCase) {
			src := c.src + "/"
			c.run(t, c.scratch, "rsync", "-a", src, dst(c))
			if out := c.run(t, c.scratch, "rsync", "-ai", src, dst(c)); strings.TrimSpace(out) != "" {
				t.Fatalf("the second rsync -a transfers again:\n%s", out)
			}
			changeTree(t, c.src)
			c.run(t, c.scratch, "rsync", "-a", "--delete", src, dst(c))
			appendTo(t, filepath.Join(c.src, "docs/d2/note02.txt"), "changed in place\n")
			c.run(t, c.scratch, "rsync", "-a", "--inplace", src, dst(c))
			appendTo(t, filepath.Join(c.src, "docs/d3/note03.txt"), "changed again\n")
			c.run(t, c.scratch, "rsync", "-a", "--partial", "--fsync", src, dst(c))
			if out := c.run(t, c.scratch, "rsync", "-ai", "--delete", src, dst(c)); strings.TrimSpace(out) != "" {
				t.Fatalf("rsync -a after the changes transfers again:\n%s", out)
			}
			c.want = treeSums(t, c.src)
		},
		check: func(t *testing.T, c *toolCase) {
			sameTree(t, "the rsync copy", treeSums(t, dst(c)), c.want)
			// Sizes, mtimes, modes and links were kept in the bucket.
			if out := c.run(t, c.scratch, "rsync", "-ai", "--delete", "--dry-run", c.src+"/", dst(c)); strings.TrimSpace(out) != "" {
				t.Fatalf("rsync -a to a fresh mount would transfer:\n%s", out)
			}
		},
	}
}

func gitTool() tool {
	clone := func(c *toolCase) string { return filepath.Join(c.mnt, "repo") }
	return tool{
		name: "git",
		write: func(t *testing.T, c *toolCase) {
			c.env = append(c.env, "GIT_CONFIG_NOSYSTEM=1", "GIT_AUTHOR_NAME=T", "GIT_AUTHOR_EMAIL=t@example.net",
				"GIT_COMMITTER_NAME=T", "GIT_COMMITTER_EMAIL=t@example.net")
			origin := filepath.Join(c.scratch, "origin")
			c.run(t, c.scratch, "git", "init", "-q", "-b", "main", origin)
			copyTree(t, c.src+"/.", origin)
			c.run(t, origin, "git", "add", "-A")
			c.run(t, origin, "git", "commit", "-q", "-m", "first")
			changeTree(t, origin)
			c.run(t, origin, "git", "add", "-A")
			c.run(t, origin, "git", "commit", "-q", "-m", "second")
			// file://: the pack protocol, so the pack is indexed on the mount.
			c.run(t, c.scratch, "git", "clone", "-q", "file://"+origin, clone(c))
			appendTo(t, filepath.Join(clone(c), "docs/new.txt"), "committed on the mount\n")
			c.run(t, clone(c), "git", "commit", "-q", "-am", "third")
			c.run(t, clone(c), "git", "gc", "-q", "--aggressive", "--prune=now")
			c.run(t, clone(c), "git", "fsck", "--full", "--strict")
			c.want = map[string]string{"head": strings.TrimSpace(c.run(t, clone(c), "git", "rev-parse", "HEAD"))}
		},
		check: func(t *testing.T, c *toolCase) {
			c.run(t, clone(c), "git", "fsck", "--full", "--strict")
			if head := strings.TrimSpace(c.run(t, clone(c), "git", "rev-parse", "HEAD")); head != c.want["head"] {
				t.Fatalf("HEAD is %s, want %s", head, c.want["head"])
			}
			// Every file of the working tree, read through the fresh
			// mount, hashes as committed. (Without optional locks, git
			// status does not write the index back: the objects are
			// compared with the files afterwards.)
			if out := c.run(t, clone(c), "git", "--no-optional-locks", "status", "--porcelain"); strings.TrimSpace(out) != "" {
				t.Fatalf("git status on a fresh mount:\n%s", out)
			}
		},
	}
}

func sqliteTool() tool {
	// Rows added, changed and deleted in many transactions: the database
	// file is rewritten in place page by page, with its journal or WAL
	// beside it, each commit synced.
	const fill = "CREATE TABLE t(k INTEGER PRIMARY KEY, v TEXT);\n"
	var txs strings.Builder
	for i := 0; i < 20; i++ {
		fmt.Fprintf(&txs, `BEGIN;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 200)
INSERT INTO t(v) SELECT printf('%%d-%%d-', %d, i) || hex(randomblob(40)) FROM n;
UPDATE t SET v = v || '+' WHERE k %% 7 = %d;
DELETE FROM t WHERE k %% 13 = %d;
COMMIT;
`, i, i%7, i%13)
	}
	const summary = "PRAGMA integrity_check; SELECT count(*), sum(k), sum(length(v)), max(v) FROM t;"
	return tool{
		name: "sqlite",
		write: func(t *testing.T, c *toolCase) {
			c.want = map[string]string{}
			for _, mode := range []string{"delete", "wal"} {
				db := filepath.Join(c.mnt, mode+".db")
				c.run(t, c.scratch, "sqlite3", db, "PRAGMA journal_mode="+mode+";\n"+fill+txs.String())
				out := c.run(t, c.scratch, "sqlite3", db, summary)
				if !strings.HasPrefix(out, "ok\n") {
					t.Fatalf("%s database: %s", mode, out)
				}
				c.want[mode] = out
			}
		},
		check: func(t *testing.T, c *toolCase) {
			for mode, want := range c.want {
				if out := c.run(t, c.scratch, "sqlite3", filepath.Join(c.mnt, mode+".db"), summary); out != want {
					t.Fatalf("%s database on a fresh mount: %q, want %q", mode, out, want)
				}
			}
		},
	}
}

func tarTool() tool {
	return tool{
		name: "tar",
		write: func(t *testing.T, c *toolCase) {
			dir := filepath.Dir(c.src)
			local := filepath.Join(c.scratch, "local.tar")
			c.run(t, dir, "tar", "-cf", local, "src")
			c.run(t, dir, "tar", "-cf", filepath.Join(c.mnt, "src.tar"), "src") // create on the mount
			mkdir(t, filepath.Join(c.mnt, "x"))
			c.run(t, dir, "tar", "-xf", local, "-C", filepath.Join(c.mnt, "x")) // extract onto it
			c.want = treeSums(t, c.src)
			c.want["local.tar"] = local
		},
		check: func(t *testing.T, c *toolCase) {
			c.run(t, c.scratch, "tar", "-xf", filepath.Join(c.mnt, "src.tar"))
			want := map[string]string{}
			for k, v := range c.want {
				if k != "local.tar" {
					want[k] = v
				}
			}
			sameTree(t, "the archive made on the mount", treeSums(t, filepath.Join(c.scratch, "src")), want)
			// tar --compare: contents, sizes, modes, mtimes and the link
			// of what was extracted onto the mount, read through a fresh one.
			c.run(t, filepath.Join(c.mnt, "x"), "tar", "--compare", "-f", c.want["local.tar"])
		},
	}
}

func appendTo(t *testing.T, p, s string) {
	t.Helper()
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
}
