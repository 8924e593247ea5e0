package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/logsift/logsift/pkg/auth"
)

const tokenUsage = `Usage:
  logsift token create -tenant T -scope push,query [-name N] [-allow-tenant a,b] [target flags]
  logsift token ls     [-json] [target flags]
  logsift token revoke ID-or-name [target flags]

Scopes: push (write logs), query (read logs), admin (manage tokens, flush;
includes push and query).

Target flags choose where the tokens live:
  -data-dir D        the server's data directory (default ./logsift-data);
                     the tokens file is D/meta/tokens.json
  -config.file F     read data_dir and auth.tokens_file from the server config
  -tokens-file P     the tokens file itself
  -url U             a running server's admin API instead of the file, with
                     an admin token in -token or $LOGSIFT_TOKEN

Editing the file directly is safe while the server runs: writes are locked
and atomic, and the server picks up changes within a second.
`

// runToken manages API tokens.
func runToken(ctx context.Context, args []string) error {
	return tokenCommand(ctx, args, os.Stdout, os.Stderr)
}

func tokenCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, tokenUsage)
		if len(args) == 0 {
			return errors.New("missing subcommand: create, ls or revoke")
		}
		return flag.ErrHelp
	}
	sub, args := args[0], args[1:]
	fs := flag.NewFlagSet("token "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, tokenUsage) }
	var t tokenTarget
	t.flags(fs)
	switch sub {
	case "create":
		tenantID := fs.String("tenant", "", "tenant the token acts for (required)")
		scopes := fs.String("scope", "", "comma-separated scopes: push, query, admin (required)")
		name := fs.String("name", "", "a name to recognise the token by")
		allow := fs.String("allow-tenant", "", "comma-separated further tenants the token may name in X-Scope-OrgID")
		asJSON := fs.Bool("json", false, "print the new token as JSON")
		if _, err := parseWithArgs(fs, args, 0); err != nil {
			return err
		}
		if *tenantID == "" {
			return errors.New("-tenant is required")
		}
		sc, err := auth.ParseScopes(*scopes)
		if err != nil {
			return fmt.Errorf("-scope: %w", err)
		}
		spec := auth.TokenSpec{Name: *name, Tenant: *tenantID, Scopes: sc, AllowedTenants: splitList(*allow)}
		if err := spec.Validate(); err != nil {
			return err
		}
		v, where, err := t.create(ctx, spec)
		if err != nil {
			return err
		}
		if *asJSON {
			return json.NewEncoder(stdout).Encode(v)
		}
		// The secret alone goes to stdout, so that TOKEN=$(logsift token
		// create ...) captures it; the explanation goes to stderr.
		fmt.Fprintf(stderr, "Created token %s (%s) in %s.\nThis is the only time it is shown; the server keeps only its hash:\n", v.ID, describe(v), where)
		fmt.Fprintln(stdout, v.Token)
		return nil
	case "ls", "list":
		asJSON := fs.Bool("json", false, "print JSON")
		if _, err := parseWithArgs(fs, args, 0); err != nil {
			return err
		}
		list, err := t.list(ctx)
		if err != nil {
			return err
		}
		if *asJSON {
			return json.NewEncoder(stdout).Encode(map[string]any{"tokens": list})
		}
		printTokens(stdout, list)
		return nil
	case "revoke":
		pos, err := parseWithArgs(fs, args, 1)
		if err != nil {
			return err
		}
		v, where, err := t.revoke(ctx, pos[0])
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "Revoked token %s (%s) in %s.\n", v.ID, describe(v), where)
		return nil
	}
	fmt.Fprint(stderr, tokenUsage)
	return fmt.Errorf("unknown subcommand %q: use create, ls or revoke", sub)
}

// parseWithArgs parses flags that may come before or after want positional
// arguments ("revoke ID -data-dir D" as well as "revoke -data-dir D ID").
func parseWithArgs(fs *flag.FlagSet, args []string, want int) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(pos) != want {
		if want == 0 {
			return nil, fmt.Errorf("unexpected argument %q", pos[0])
		}
		return nil, fmt.Errorf("want %d argument(s), got %d", want, len(pos))
	}
	return pos, nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func describe(v auth.TokenView) string {
	parts := []string{}
	if v.Name != "" {
		parts = append(parts, fmt.Sprintf("name %q", v.Name))
	}
	parts = append(parts, "tenant "+v.Tenant, "scopes "+joinScopes(v.Scopes))
	if len(v.AllowedTenants) > 0 {
		parts = append(parts, "may also act for "+strings.Join(v.AllowedTenants, ","))
	}
	return strings.Join(parts, ", ")
}

func joinScopes(s []auth.Scope) string {
	out := make([]string, len(s))
	for i, sc := range s {
		out[i] = string(sc)
	}
	return strings.Join(out, ",")
}

func printTokens(w io.Writer, list []auth.TokenView) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tTENANT\tSCOPES\tALSO FOR\tCREATED\tLAST USED\tSTATUS")
	day := func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.Local().Format("2006-01-02 15:04")
	}
	for _, v := range list {
		status := "active"
		if !v.Revoked.IsZero() {
			status = "revoked " + day(v.Revoked)
		}
		name, also := v.Name, strings.Join(v.AllowedTenants, ",")
		if name == "" {
			name = "-"
		}
		if also == "" {
			also = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", v.ID, name, v.Tenant, joinScopes(v.Scopes), also, day(v.Created), day(v.LastUsed), status)
	}
	tw.Flush()
}

// tokenTarget is where the tokens are: a file, or a server's admin API.
type tokenTarget struct {
	dataDir, configFile, tokensFile string
	url, token, caFile              string
}

func (t *tokenTarget) flags(fs *flag.FlagSet) {
	fs.StringVar(&t.dataDir, "data-dir", "", "server data directory (default ./logsift-data)")
	fs.StringVar(&t.configFile, "config.file", "", "server configuration file to take data_dir and auth.tokens_file from")
	fs.StringVar(&t.tokensFile, "tokens-file", "", "tokens file (default <data-dir>/meta/tokens.json)")
	fs.StringVar(&t.url, "url", "", "manage tokens through a running server's admin API at this base URL")
	fs.StringVar(&t.token, "token", "", "admin token for -url (default $LOGSIFT_TOKEN)")
	fs.StringVar(&t.caFile, "ca-file", "", "PEM CA bundle to trust for an https -url")
}

func (t *tokenTarget) remote() bool { return t.url != "" }

func (t *tokenTarget) client() (*auth.Client, error) {
	tok := t.token
	if tok == "" {
		tok = os.Getenv("LOGSIFT_TOKEN")
	}
	c := &auth.Client{URL: t.url, Token: tok}
	if t.caFile != "" {
		pem, err := os.ReadFile(t.caFile)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s holds no PEM certificate", t.caFile)
		}
		c.HTTP = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	}
	return c, nil
}

// path resolves the tokens file: -tokens-file, else the config's
// auth.tokens_file, else <data dir>/meta/tokens.json.
func (t *tokenTarget) path() (string, error) {
	if t.tokensFile != "" {
		return t.tokensFile, nil
	}
	dataDir := t.dataDir
	if t.configFile != "" {
		// Only the two fields matter here, so the rest of the file is not
		// checked: the server does that when it starts.
		var cfg struct {
			DataDir string `yaml:"data_dir"`
			Auth    struct {
				TokensFile string `yaml:"tokens_file"`
			} `yaml:"auth"`
		}
		data, err := os.ReadFile(t.configFile)
		if err != nil {
			return "", fmt.Errorf("read config: %w", err)
		}
		if err := yaml.Unmarshal(data, &cfg); err != nil {
			return "", fmt.Errorf("config %s: %w", t.configFile, err)
		}
		if cfg.Auth.TokensFile != "" {
			return cfg.Auth.TokensFile, nil
		}
		if dataDir == "" {
			dataDir = cfg.DataDir
		}
	}
	if dataDir == "" {
		dataDir = "./logsift-data"
	}
	return auth.DefaultTokensPath(dataDir), nil
}

func (t *tokenTarget) open() (*auth.TokenFile, string, error) {
	p, err := t.path()
	if err != nil {
		return nil, "", err
	}
	f, err := auth.OpenTokenFile(p, auth.TokenFileOptions{LastUsedResolution: -1, Logger: slog.New(slog.DiscardHandler)})
	return f, p, err
}

func (t *tokenTarget) create(ctx context.Context, spec auth.TokenSpec) (auth.TokenView, string, error) {
	if t.remote() {
		c, err := t.client()
		if err != nil {
			return auth.TokenView{}, "", err
		}
		v, err := c.Create(ctx, spec)
		return v, t.url, err
	}
	f, p, err := t.open()
	if err != nil {
		return auth.TokenView{}, "", err
	}
	defer f.Close()
	secret, tok, err := f.Create(spec)
	if err != nil {
		return auth.TokenView{}, "", err
	}
	v := tok.View()
	v.Token = secret
	return v, p, nil
}

func (t *tokenTarget) list(ctx context.Context) ([]auth.TokenView, error) {
	if t.remote() {
		c, err := t.client()
		if err != nil {
			return nil, err
		}
		return c.List(ctx)
	}
	f, _, err := t.open()
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []auth.TokenView
	for _, tok := range f.List() {
		out = append(out, tok.View())
	}
	return out, nil
}

func (t *tokenTarget) revoke(ctx context.Context, id string) (auth.TokenView, string, error) {
	if t.remote() {
		c, err := t.client()
		if err != nil {
			return auth.TokenView{}, "", err
		}
		v, err := c.Revoke(ctx, id)
		return v, t.url, err
	}
	f, p, err := t.open()
	if err != nil {
		return auth.TokenView{}, "", err
	}
	defer f.Close()
	tok, err := f.Revoke(id)
	return tok.View(), p, err
}
