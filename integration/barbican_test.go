//go:build integration

package integration

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// openstackEnv reads one of the client environments that
// servers/openstack.sh writes: env (the ssecfs project's user),
// appcred.env (its application credential), other.env (another project).
func openstackEnv(t *testing.T, file string) map[string]string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(stateDir, "openstack", file))
	if err != nil {
		t.Fatalf("Keystone and Barbican are not started (run integration/servers/up.sh): %v", err)
	}
	env := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimPrefix(strings.TrimSpace(line), "export ")
		if k, v, ok := strings.Cut(line, "="); ok && strings.HasPrefix(k, "OS_") {
			env[k] = strings.Trim(v, `"'`)
		}
	}
	return env
}

// withOS is s's environment plus the OpenStack variables os.
func (s *server) withOS(os map[string]string) []string {
	env := s.env()
	for k, v := range os {
		env = append(env, k+"="+v)
	}
	return env
}

// openstack runs Debian's OpenStack client with env.
func openstackCLI(t *testing.T, env map[string]string, args ...string) string {
	t.Helper()
	cmd := exec.Command("/usr/bin/openstack", args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "OS_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("openstack %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// storeSecret stores payload as the provider's guide does; returns the href.
func storeSecret(t *testing.T, env map[string]string, payload string) string {
	t.Helper()
	return openstackCLI(t, env, "secret", "store", "--name", "objectSecret", "--algorithm", "aes",
		"--bit-length", "256", "--payload", payload, "-f", "value", "-c", "Secret href")
}

// runWith runs the binary with env and returns its output and exit code.
func runWith(t *testing.T, env []string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return string(out), ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return string(out), 0
}

// barbicanMount mounts target with the key from the secret at href.
func (s *server) barbicanMount(t *testing.T, osEnv map[string]string, href, target string, args ...string) *mount {
	t.Helper()
	m := &mount{dir: t.TempDir(), log: filepath.Join(t.TempDir(), "ssecfs.log")}
	full := append([]string{"mount", "--endpoint", s.endpoint, "--barbican-secret", href,
		"--log-file", m.log, "--log-level", "debug"}, args...)
	out, code := runWith(t, s.withOS(osEnv), append(full, target, m.dir)...)
	if code != 0 {
		t.Fatalf("mount failed (%d): %s\nlog:\n%s", code, out, readLog(m.log))
	}
	m.pid = pidFromLog(t, m.log)
	t.Cleanup(func() { m.unmount(t) })
	return m
}

func TestTheProviderGuideFlowWithBarbican(t *testing.T) {
	s := loadServer(t, "rgw")
	osEnv := openstackEnv(t, "env")
	pw, err := exec.Command("pwgen", "32", "1").Output()
	if err != nil {
		t.Fatal(err)
	}
	secretRaw := strings.TrimSpace(string(pw))
	href := storeSecret(t, osEnv, secretRaw)
	payload := openstackCLI(t, osEnv, "secret", "get", href, "-p", "-c", "Payload", "-f", "value")
	if payload != secretRaw {
		t.Fatalf("Barbican returned another payload")
	}
	b := s.bucket(t)
	src := filepath.Join(t.TempDir(), "photo.png")
	data := random(t, 3<<20)
	os.WriteFile(src, data, 0o644)
	s.aws(t, append([]string{"s3", "cp", src, "s3://" + b + "/photo.png"}, sse(payload)...)...)

	m := s.barbicanMount(t, osEnv, href, b, "--write-back", "0")
	if got, err := fileSum(t, filepath.Join(m.dir, "photo.png")); err != nil || got != sum(data) {
		t.Fatalf("photo.png through the mount: %v or bytes differ", err)
	}
	written := random(t, 1<<20)
	if err := os.WriteFile(filepath.Join(m.dir, "from-mount.bin"), written, 0o644); err != nil {
		t.Fatal(err)
	}
	m.unmount(t)
	down := filepath.Join(t.TempDir(), "from-mount.bin")
	s.aws(t, append([]string{"s3", "cp", "s3://" + b + "/from-mount.bin", down}, sse(payload)...)...)
	if got, _ := os.ReadFile(down); string(got) != string(written) {
		t.Fatal("aws reads other bytes than were written through the mount")
	}
}

func TestKeyCreateThenMountWithAnApplicationCredential(t *testing.T) {
	s := loadServer(t, "minio")
	app := openstackEnv(t, "appcred.env")
	out, code := runWith(t, s.withOS(app), "key", "create", "--name", "ssecfs-test-key")
	href := strings.TrimSpace(out)
	if code != 0 || !regexp.MustCompile(`^https?://\S+/v1/secrets/[0-9a-f-]{36}$`).MatchString(href) {
		t.Fatalf("key create (%d) printed %q, want only the secret href", code, out)
	}
	payload := openstackCLI(t, app, "secret", "get", href, "-p", "-c", "Payload", "-f", "value")
	if !regexp.MustCompile(`^[A-Za-z0-9]{32}$`).MatchString(payload) {
		t.Fatal("the stored key is not 32 printable characters")
	}
	b := s.bucket(t)
	m := s.barbicanMount(t, app, href, b, "--write-back", "0")
	os.WriteFile(filepath.Join(m.dir, "f"), []byte("appcred"), 0o644)
	m.unmount(t)
	down := filepath.Join(t.TempDir(), "f")
	s.aws(t, append([]string{"s3", "cp", "s3://" + b + "/f", down}, sse(payload)...)...)
	if got, _ := os.ReadFile(down); string(got) != "appcred" {
		t.Fatalf("aws read %q", got)
	}
	// key check tells, without printing the key.
	out, code = runWith(t, s.withOS(app), "key", "check", "--endpoint", s.endpoint, "--barbican-secret", href, b)
	if code != 0 || strings.Contains(out, payload) {
		t.Fatalf("key check (%d): %s", code, out)
	}
	out, code = runWith(t, s.env(), "key", "check", "--endpoint", s.endpoint, "--key-file", keyFile(t, secret), b)
	if code != 1 || !strings.Contains(out, "wrong key") {
		t.Fatalf("key check of a wrong key (%d): %s", code, out)
	}
}

func TestBarbicanFailuresRefuseTheMount(t *testing.T) {
	s := loadServer(t, "minio")
	osEnv := openstackEnv(t, "env")
	other := openstackEnv(t, "other.env")
	href := storeSecret(t, osEnv, "Ahx4oofae6eiquohXoh4ohgh6ieSh8ph")
	short := storeSecret(t, osEnv, "only-sixteen-chr")
	b := s.bucket(t)
	closed := func() string {
		l, _ := net.Listen("tcp", "127.0.0.1:0")
		defer l.Close()
		return l.Addr().String()
	}()
	u := make([]byte, 16)
	rand.Read(u)
	missing := fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
	for _, tc := range []struct {
		name, want string
		env        map[string]string
		href       string
		args       []string
	}{
		{"Keystone unreachable", "cannot reach Keystone", with1(osEnv, "OS_AUTH_URL", "http://"+closed+"/v3"), href, nil},
		{"bad credentials", "refused the credentials (401)", with1(osEnv, "OS_PASSWORD", "not-the-password"), href, nil},
		{"secret of another project", "not visible to this project (403)", other, href, nil},
		{"no such secret", "no such secret (404)", osEnv, href[:strings.LastIndex(href, "/")+1] + missing, nil},
		{"no key-manager endpoint", "no key-manager endpoint", osEnv, href, []string{"--os-region", "Nowhere"}},
		{"payload not a key", "not a 32-byte key", osEnv, short, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			args := append([]string{"mount", "--endpoint", s.endpoint, "--barbican-secret", tc.href,
				"--log-file", filepath.Join(t.TempDir(), "log")}, tc.args...)
			out, code := runWith(t, s.withOS(tc.env), append(args, b, dir)...)
			if code == 0 {
				t.Fatal("mount succeeded")
			}
			if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 1 || !strings.Contains(out, tc.want) {
				t.Fatalf("want one line with %q, got:\n%s", tc.want, out)
			}
			if strings.Contains(out, osEnv["OS_PASSWORD"]) || strings.Contains(out, "Ahx4oofae6eiquohXoh4ohgh6ieSh8ph") {
				t.Fatal("the message shows a secret")
			}
			if isMounted(dir) {
				t.Fatal("mounted anyway")
			}
		})
	}
}

func TestNoSecretInArgvEnvironmentLogsOrFiles(t *testing.T) {
	s := loadServer(t, "minio")
	osEnv := openstackEnv(t, "env")
	app := openstackEnv(t, "appcred.env")
	key := "Ahx4oofae6eiquohXoh4ohgh6ieSh8ph"
	href := storeSecret(t, osEnv, key)
	b := s.bucket(t)
	journal := t.TempDir()
	m := s.barbicanMount(t, osEnv, href, b, "--trace", "--debug-fuse", "--write-back", "1h", "--journal-dir", journal)
	for i := 0; i < 5; i++ {
		os.WriteFile(filepath.Join(m.dir, fmt.Sprintf("f%d", i)), random(t, 200<<10), 0o644)
	}
	os.ReadFile(filepath.Join(m.dir, "f0"))

	secrets := map[string]string{
		"key":                           key,
		"key (base64)":                  base64.StdEncoding.EncodeToString([]byte(key)),
		"key (hex)":                     hex.EncodeToString([]byte(key)),
		"Keystone password":             osEnv["OS_PASSWORD"],
		"application credential secret": app["OS_APPLICATION_CREDENTIAL_SECRET"],
	}
	look := func(where string, data []byte) {
		for what, v := range secrets {
			if v != "" && strings.Contains(string(data), v) {
				t.Errorf("%s holds the %s", where, what)
			}
		}
	}
	for _, f := range []string{"cmdline", "environ"} {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/%s", m.pid, f))
		if err != nil {
			t.Fatal(err)
		}
		look("/proc/PID/"+f, data)
	}
	// A failed mount's output, at the most verbose level.
	out, _ := runWith(t, s.withOS(with1(osEnv, "OS_PASSWORD", "wrong")), "mount", "--endpoint", s.endpoint,
		"--barbican-secret", href, "--log-level", "debug", "--trace", b, t.TempDir())
	look("a failed mount's output", []byte(out))
	m.unmount(t)
	for _, dir := range []string{journal, filepath.Dir(m.log)} {
		filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				data, _ := os.ReadFile(p)
				look(p, data)
			}
			return nil
		})
	}
	if !strings.Contains(readLog(m.log), "msg=request") {
		t.Fatal("request tracing was not on: the log check proves little")
	}
}

// with1 is base with k set to v.
func with1(base map[string]string, k, v string) map[string]string {
	out := map[string]string{}
	for kk, vv := range base {
		out[kk] = vv
	}
	out[k] = v
	return out
}
