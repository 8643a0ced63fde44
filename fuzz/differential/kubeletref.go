// Command kubeletref is the Go side of kubelet-keyring's differential test (see run.sh).
//
// It restates, with the Go standard library only, the kubelet functions that the Rust crates
// re-implement: ParseSchemelessURL, URLsMatchStr, BasicDockerKeyring Add/Lookup with the
// isDefaultRegistryMatch fallback (pkg/credentialprovider/keyring.go), the docker config
// types and decodeDockerConfigFieldAuth (pkg/credentialprovider/config.go), distribution/
// reference ParseNormalizedNamed as the kubelet's ParseImageName uses it, filepath.Match and
// time.ParseDuration / Duration.String. The restatements follow the kubelet-keyring spec
// (sections 4, 5 and 6), written from the algorithms, not copied.
//
// Input: one JSON case per line on stdin ({"k": kind, "a", "b", "l", "n"}). Output: one JSON
// result per line on stdout ({"ok", "v", "e"}), in the same order. Byte strings that may not
// be UTF-8 (hosts, paths, keys, user names, passwords) are hex-encoded in the output.
package main

import (
	"bufio"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

type input struct {
	Kind string   `json:"k"`
	A    string   `json:"a"`
	B    string   `json:"b"`
	L    []string `json:"l"`
	N    int64    `json:"n"`
}

type output struct {
	Ok  bool     `json:"ok"`
	V   []string `json:"v"`
	Err string   `json:"e"`
}

func main() {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<26)
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	enc := json.NewEncoder(out)
	for in.Scan() {
		var c input
		if err := json.Unmarshal(in.Bytes(), &c); err != nil {
			fmt.Fprintf(os.Stderr, "bad case line: %v\n", err)
			os.Exit(2)
		}
		if err := enc.Encode(run(c)); err != nil {
			fmt.Fprintf(os.Stderr, "write: %v\n", err)
			os.Exit(2)
		}
	}
	if err := in.Err(); err != nil {
		fmt.Fprintf(os.Stderr, "read: %v\n", err)
		os.Exit(2)
	}
}

func unhex(s string) string {
	b, err := hex.DecodeString(s)
	if err != nil {
		fmt.Fprintf(os.Stderr, "bad hex %q\n", s)
		os.Exit(2)
	}
	return string(b)
}

func hx(s string) string { return hex.EncodeToString([]byte(s)) }

func result(ok bool, err error, v ...string) output {
	o := output{Ok: ok, V: v}
	if err != nil {
		o.Err = err.Error()
	}
	return o
}

func run(c input) output {
	switch c.Kind {
	case "url":
		u, err := ParseSchemelessURL(c.A)
		if err != nil {
			return result(false, err)
		}
		return result(true, nil, hx(u.Host), hx(u.Path))
	case "match":
		m, err := URLsMatchStr(c.A, c.B)
		return result(m, err)
	case "glob":
		pattern := unhex(c.A)
		m, err := filepath.Match(pattern, unhex(c.B))
		// Go 1.19 returns (false, nil) for a mismatch before a malformed chunk; newer Go
		// (which current kubelets are built with, and which the Rust port follows) reports
		// ErrBadPattern. v[0] is the newer answer; ok/e stay Go 1.19's.
		newer := "false"
		switch {
		case err != nil:
			newer = "ErrBadPattern"
		case m:
			newer = "true"
		case malformedChunk(pattern):
			newer = "ErrBadPattern"
		}
		return result(m, err, newer)
	case "key":
		k, err := keyringKey(c.A)
		if err != nil {
			return result(false, err)
		}
		return result(true, nil, hx(k))
	case "keyring":
		var dk keyring
		for i, loc := range c.L {
			// One Add per entry: the order of credentials under one key is then insertion
			// order, as it is in Rust (within one Add it follows Go's map iteration).
			dk.Add(map[string]int{loc: i})
		}
		found, ok := dk.Lookup(c.B)
		v := make([]string, len(found))
		for i, n := range found {
			v[i] = strconv.Itoa(n)
		}
		return result(ok, nil, v...)
	case "hub":
		return result(isDefaultRegistryMatch(c.A), nil)
	case "auth":
		u, p, err := decodeDockerConfigFieldAuth(c.A)
		if err != nil {
			return result(false, err)
		}
		return result(true, nil, hx(u), hx(p))
	case "cfgjson":
		var cfg DockerConfigJSON
		if err := json.Unmarshal([]byte(unhex(c.A)), &cfg); err != nil {
			return result(false, err)
		}
		return result(true, nil, entries(cfg.Auths)...)
	case "dockercfg":
		var cfg DockerConfig
		if err := json.Unmarshal([]byte(unhex(c.A)), &cfg); err != nil {
			return result(false, err)
		}
		return result(true, nil, entries(cfg)...)
	case "image":
		name, err := ParseImageName(c.A)
		if err != nil {
			return result(false, err)
		}
		return result(true, nil, name)
	case "dur":
		d, err := time.ParseDuration(c.A)
		if err != nil {
			return result(false, err)
		}
		return result(true, nil, strconv.FormatInt(int64(d), 10))
	case "durfmt":
		return result(true, nil, time.Duration(c.N).String())
	}
	fmt.Fprintf(os.Stderr, "unknown case kind %q\n", c.Kind)
	os.Exit(2)
	return output{}
}

// entries lists a DockerConfig as "key user password email" (each hex), sorted by key.
func entries(cfg DockerConfig) []string {
	v := make([]string, 0, len(cfg))
	for k, e := range cfg {
		v = append(v, strings.Join([]string{hx(k), hx(e.Username), hx(e.Password), hx(e.Email)}, " "))
	}
	sort.Strings(v)
	return v
}

// malformedChunk: does any star-separated chunk of the pattern fail to parse? Since Go 1.19's
// Match fully parses every chunk it reaches, "newer Match = 1.19 Match, except a mismatch
// becomes ErrBadPattern when some chunk is malformed".
func malformedChunk(pattern string) bool {
	for pattern != "" {
		var chunk string
		chunk, pattern = scanChunk(pattern)
		if chunk == "" {
			continue
		}
		if _, err := filepath.Match(chunk, ""); err != nil {
			return true
		}
	}
	return false
}

// scanChunk: the Unix path/filepath scanChunk (leading stars dropped, then up to the next
// star outside a class).
func scanChunk(pattern string) (chunk, rest string) {
	for pattern != "" && pattern[0] == '*' {
		pattern = pattern[1:]
	}
	inRange := false
	i := 0
Scan:
	for ; i < len(pattern); i++ {
		switch pattern[i] {
		case '\\':
			if i+1 < len(pattern) {
				i++
			}
		case '[':
			inRange = true
		case ']':
			inRange = false
		case '*':
			if !inRange {
				break Scan
			}
		}
	}
	return pattern[:i], pattern[i:]
}

// ---- pkg/credentialprovider/keyring.go (spec 4.1 to 4.3) ----

// ParseSchemelessURL parses s as url.Parse("https://" + s) and drops the scheme.
func ParseSchemelessURL(s string) (*url.URL, error) {
	parsed, err := url.Parse("https://" + s)
	if err != nil {
		return nil, err
	}
	parsed.Scheme = ""
	return parsed, nil
}

// SplitURL: the host's dot-separated labels and its port ("" when SplitHostPort fails).
func SplitURL(u *url.URL) ([]string, string) {
	host, port, err := net.SplitHostPort(u.Host)
	if err != nil {
		host, port = u.Host, ""
	}
	return strings.Split(host, "."), port
}

// URLsMatchStr: does the glob URL match the target URL?
func URLsMatchStr(glob, target string) (bool, error) {
	g, err := ParseSchemelessURL(glob)
	if err != nil {
		return false, err
	}
	t, err := ParseSchemelessURL(target)
	if err != nil {
		return false, err
	}
	return URLsMatch(g, t)
}

// URLsMatch: equal ports, equal label counts, path prefix, then a glob per label.
func URLsMatch(g, t *url.URL) (bool, error) {
	gParts, gPort := SplitURL(g)
	tParts, tPort := SplitURL(t)
	if gPort != tPort {
		return false, nil
	}
	if len(gParts) != len(tParts) {
		return false, nil
	}
	if !strings.HasPrefix(t.Path, g.Path) {
		return false, nil
	}
	for i, part := range gParts {
		m, err := filepath.Match(part, tParts[i])
		if err != nil {
			return false, err
		}
		if !m {
			return false, nil
		}
	}
	return true, nil
}

// keyringKey: what BasicDockerKeyring.Add files an entry under.
func keyringKey(loc string) (string, error) {
	value := loc
	if !strings.HasPrefix(value, "https://") && !strings.HasPrefix(value, "http://") {
		value = "https://" + value
	}
	parsed, err := url.Parse(value)
	if err != nil {
		return "", err
	}
	effectivePath := parsed.Path
	if strings.HasPrefix(effectivePath, "/v2/") || strings.HasPrefix(effectivePath, "/v1/") {
		effectivePath = effectivePath[3:]
	}
	if len(effectivePath) > 0 && effectivePath != "/" {
		return parsed.Host + effectivePath, nil
	}
	return parsed.Host, nil
}

const defaultRegistryHost = "index.docker.io"

type keyring struct {
	index []string
	creds map[string][]int
}

// Add files each entry under its key (skipping keys that do not parse), then keeps the
// index de-duplicated and sorted in descending byte order.
func (dk *keyring) Add(cfg map[string]int) {
	if dk.creds == nil {
		dk.creds = map[string][]int{}
	}
	for loc, v := range cfg {
		key, err := keyringKey(loc)
		if err != nil {
			continue
		}
		dk.creds[key] = append(dk.creds[key], v)
		dk.index = append(dk.index, key)
	}
	seen := map[string]bool{}
	unique := dk.index[:0]
	for _, k := range dk.index {
		if !seen[k] {
			seen[k] = true
			unique = append(unique, k)
		}
	}
	dk.index = unique
	sort.Sort(sort.Reverse(sort.StringSlice(dk.index)))
}

// Lookup: every credential whose key matches, in index order; else the Docker Hub fallback.
func (dk *keyring) Lookup(image string) ([]int, bool) {
	var ret []int
	for _, k := range dk.index {
		if m, _ := URLsMatchStr(k, image); m {
			ret = append(ret, dk.creds[k]...)
		}
	}
	if len(ret) > 0 {
		return ret, true
	}
	if isDefaultRegistryMatch(image) {
		if auth, ok := dk.creds[defaultRegistryHost]; ok {
			return auth, true
		}
	}
	return nil, false
}

func isDefaultRegistryMatch(image string) bool {
	parts := strings.SplitN(image, "/", 2)
	if len(parts[0]) == 0 {
		return false
	}
	if len(parts) == 1 {
		return true
	}
	if parts[0] == "docker.io" || parts[0] == "index.docker.io" {
		return true
	}
	return !strings.ContainsAny(parts[0], ".:")
}

// ---- pkg/credentialprovider/config.go (spec 5.1 to 5.3) ----

type DockerConfigJSON struct {
	Auths       DockerConfig      `json:"auths"`
	HTTPHeaders map[string]string `json:"HttpHeaders,omitempty"`
}

type DockerConfig map[string]DockerConfigEntry

type DockerConfigEntry struct {
	Username string
	Password string
	Email    string
}

type dockerConfigEntryWithAuth struct {
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`
	Email    string `json:"email,omitempty"`
	Auth     string `json:"auth,omitempty"`
}

func (e *DockerConfigEntry) UnmarshalJSON(data []byte) error {
	var tmp dockerConfigEntryWithAuth
	if err := json.Unmarshal(data, &tmp); err != nil {
		return err
	}
	e.Username, e.Password, e.Email = tmp.Username, tmp.Password, tmp.Email
	if len(tmp.Auth) == 0 {
		return nil
	}
	var err error
	e.Username, e.Password, err = decodeDockerConfigFieldAuth(tmp.Auth)
	return err
}

func decodeDockerConfigFieldAuth(field string) (string, string, error) {
	var decoded []byte
	var err error
	if strings.HasSuffix(strings.TrimSpace(field), "=") {
		decoded, err = base64.StdEncoding.DecodeString(field)
	} else {
		decoded, err = base64.RawStdEncoding.DecodeString(field)
	}
	if err != nil {
		return "", "", err
	}
	user, pass, ok := strings.Cut(string(decoded), ":")
	if !ok {
		return "", "", errors.New("unable to parse auth field, must be formatted as base64(username:password)")
	}
	return user, pass, nil
}

// ---- distribution/reference ParseNormalizedNamed + Name() (spec section 6) ----

const (
	alphanumeric        = `[a-z0-9]+`
	separator           = `(?:[._]|__|[-]+)`
	domainNameComponent = `(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])`
	optionalPort        = `(?::[0-9]+)?`
	tagPat              = `[\w][\w.-]{0,127}`
	digestPat           = `[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][[:xdigit:]]{32,}`
	ipv6address         = `\[(?:[a-fA-F0-9:]+)\]`
	domainName          = domainNameComponent + `(?:\.` + domainNameComponent + `)*`
	hostPat             = `(?:` + domainName + `|` + ipv6address + `)`
	domainAndPort       = hostPat + optionalPort
	pathComponent       = alphanumeric + `(?:` + separator + alphanumeric + `)*`
	remoteName          = pathComponent + `(?:/` + pathComponent + `)*`
	namePat             = `(?:` + domainAndPort + `/)?` + remoteName
)

var (
	referenceRegexp    = regexp.MustCompile(`^(` + namePat + `)(?::(` + tagPat + `))?(?:@(` + digestPat + `))?$`)
	anchoredIdentifier = regexp.MustCompile(`^[a-f0-9]{64}$`)
	digestHex          = map[string]*regexp.Regexp{
		"sha256": regexp.MustCompile(`^[a-f0-9]{64}$`),
		"sha384": regexp.MustCompile(`^[a-f0-9]{96}$`),
		"sha512": regexp.MustCompile(`^[a-f0-9]{128}$`),
	}
)

func splitDockerDomain(name string) (domain, remote string) {
	maybeDomain, maybeRemote, ok := strings.Cut(name, "/")
	if !ok {
		return "docker.io", "library/" + name
	}
	switch {
	case maybeDomain == "localhost":
		domain, remote = maybeDomain, maybeRemote
	case maybeDomain == "index.docker.io":
		domain, remote = "docker.io", maybeRemote
	case strings.ContainsAny(maybeDomain, ".:"):
		domain, remote = maybeDomain, maybeRemote
	case strings.ToLower(maybeDomain) != maybeDomain:
		domain, remote = maybeDomain, maybeRemote
	default:
		domain, remote = "docker.io", name
	}
	if domain == "docker.io" && !strings.ContainsRune(remote, '/') {
		remote = "library/" + remote
	}
	return domain, remote
}

// ParseImageName returns the repository name the kubelet matches and sends as `image`.
func ParseImageName(s string) (string, error) {
	if anchoredIdentifier.MatchString(s) {
		return "", fmt.Errorf("invalid repository name (%s), cannot specify 64-byte hexadecimal strings", s)
	}
	domain, remainder := splitDockerDomain(s)
	remote := remainder
	if i := strings.IndexRune(remainder, ':'); i > -1 {
		remote = remainder[:i]
	}
	if strings.ToLower(remote) != remote {
		return "", fmt.Errorf("invalid reference format: repository name (%s) must be lowercase", remote)
	}
	full := domain + "/" + remainder
	m := referenceRegexp.FindStringSubmatch(full)
	if m == nil {
		if referenceRegexp.FindStringSubmatch(strings.ToLower(full)) != nil {
			return "", errors.New("invalid reference format: repository name must be lowercase")
		}
		return "", errors.New("invalid reference format")
	}
	if len(m[1]) > 255 {
		return "", errors.New("repository name must not be more than 255 characters")
	}
	if d := m[3]; d != "" {
		alg, enc, _ := strings.Cut(d, ":")
		re, known := digestHex[alg]
		if !known {
			return "", errors.New("unsupported digest algorithm")
		}
		if !re.MatchString(enc) {
			return "", errors.New("invalid checksum digest format")
		}
	}
	return m[1], nil
}
