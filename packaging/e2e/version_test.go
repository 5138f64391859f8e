package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestVersionUpgrades: packaging/version.sh gives versions that dpkg sorts
// in commit order, untagged and after a tag, and depends on the commit
// alone (its date, never today's), in a throw-away git repository.
func TestVersionUpgrades(t *testing.T) {
	for _, tool := range []string{"git", "dpkg"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s: %v", tool, err)
		}
	}
	script := filepath.Join(repoRoot(t), "packaging/version.sh")
	repo := t.TempDir()
	git := func(date string, args ...string) string {
		t.Helper()
		cmd := exec.Command("git", args...)
		cmd.Dir = repo
		cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1",
			"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@localhost", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@localhost",
			"GIT_AUTHOR_DATE="+date, "GIT_COMMITTER_DATE="+date)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(string(out))
	}
	commit := func(date string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(repo, "f"), []byte(date), 0o644); err != nil {
			t.Fatal(err)
		}
		git(date, "add", "f")
		git(date, "commit", "-q", "-m", date)
	}
	version := func() string {
		t.Helper()
		out, err := exec.Command(script, repo).CombinedOutput()
		if err != nil {
			t.Fatalf("version.sh: %v\n%s", err, out)
		}
		return strings.TrimSpace(string(out))
	}
	git("", "init", "-q", "-b", "main")

	// Two commits on one day, in a time zone east of UTC: the date is UTC.
	commit("2026-11-30T23:30:00+01:00")
	v1 := version()
	commit("2026-11-30T23:45:00+01:00")
	v2 := version()
	if again := version(); again != v2 {
		t.Errorf("the same commit gave %s, then %s", v2, again)
	}
	commit("2026-12-01T09:00:00+00:00")
	v3 := version()
	untagged := regexp.MustCompile(`^0\.0\.0~git20261130\.2\.[0-9a-f]{12}$`)
	if !untagged.MatchString(v2) {
		t.Errorf("second commit: %s, want 0.0.0~git20261130.2.<hash>", v2)
	}
	git("", "tag", "v1.2.3")
	tagged := version()
	if tagged != "1.2.3" {
		t.Errorf("at tag v1.2.3: %s, want 1.2.3", tagged)
	}
	commit("2026-12-02T08:00:00+00:00")
	after := version()
	if !strings.HasPrefix(after, "1.2.3+git20261202.1.") {
		t.Errorf("a commit after v1.2.3: %s, want 1.2.3+git20261202.1.<hash>", after)
	}
	if err := os.WriteFile(filepath.Join(repo, "f"), []byte("uncommitted"), 0o644); err != nil {
		t.Fatal(err)
	}
	dirty := version()
	if dirty != after+".dirty" {
		t.Errorf("with uncommitted changes: %s, want %s.dirty", dirty, after)
	}

	order := []string{v1, v2, v3, tagged, after, dirty, "1.2.4"}
	t.Logf("versions in commit order: %s", strings.Join(order, " < "))
	for i := 1; i < len(order); i++ {
		if out, err := exec.Command("dpkg", "--compare-versions", order[i-1], "lt", order[i]).CombinedOutput(); err != nil {
			t.Errorf("dpkg --compare-versions %s lt %s: %v %s", order[i-1], order[i], err, out)
		}
	}
}
