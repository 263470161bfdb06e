// Command verifylog checks a live Clearance audit log with the Go checksum database's own
// packages (golang.org/x/mod/sumdb/note and sumdb/tlog), as an auditor who trusts none of
// Clearance's code would:
//
//   - the checkpoint (C2SP tlog-checkpoint) is a signed note (C2SP signed-note) that carries the
//     log's Ed25519 signature and at least -quorum cosignatures (C2SP tlog-cosignature,
//     cosignature/v1) from distinct -witness keys; cosignatures from unknown keys are ignored;
//   - the hash tiles (C2SP tlog-tiles) authenticate against the signed root, and the tree hash
//     they give (RFC 9162 §2.1.1) is that root;
//   - with -entry I: entry I's bytes are in the tree (RFC 9162 §2.1.3), by a proof computed from
//     the tiles and by the one the log serves, and its entry bundle holds the same bytes;
//   - with -old FILE: an older checkpoint of the same log is a prefix of this one (RFC 9162
//     §2.1.4), by a proof computed from the tiles and by the one the log serves.
//
// It prints one JSON line on success and exits 1 naming the failed check otherwise.
//
//	verifylog -url http://127.0.0.1:8080/audit -vkey VKEY [-witness VKEY]... [-quorum N]
//	          [-old checkpoint.txt] [-entry I]
package main

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// tileHeight is fixed by C2SP tlog-tiles: each tile holds up to 2^8 hashes.
const tileHeight = 8

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func main() {
	var witnesses multiFlag
	base := flag.String("url", "", "base URL of the log (the prefix of /checkpoint and /tile/...)")
	vkey := flag.String("vkey", "", "the log's verifier key (signed-note, type 0x01 Ed25519)")
	flag.Var(&witnesses, "witness", "a witness verifier key (type 0x04 cosignature/v1); repeatable")
	quorum := flag.Int("quorum", 0, "valid cosignatures required from distinct witness keys")
	old := flag.String("old", "", "a file holding an older checkpoint of the log to prove consistent")
	entry := flag.Int64("entry", -1, "an entry index to prove included")
	flag.Parse()
	if *base == "" || *vkey == "" || flag.NArg() != 0 {
		flag.Usage()
		os.Exit(2)
	}
	summary, err := run(strings.TrimSuffix(*base, "/"), *vkey, witnesses, *quorum, *old, *entry)
	if err != nil {
		fmt.Fprintln(os.Stderr, "verifylog: FAIL:", err)
		os.Exit(1)
	}
	out, _ := json.Marshal(summary)
	fmt.Println(string(out))
}

type summary struct {
	Origin       string   `json:"origin"`
	Size         int64    `json:"size"`
	Root         string   `json:"root"`
	Cosigners    []string `json:"cosigners"`
	Entry        *int64   `json:"entry,omitempty"`
	OldSize      *int64   `json:"consistent_with,omitempty"`
	TilesFetched int      `json:"tiles_fetched"`
}

func run(base, vkey string, witnessKeys []string, quorum int, oldFile string, entry int64) (*summary, error) {
	logVerifier, err := note.NewVerifier(vkey)
	if err != nil {
		return nil, fmt.Errorf("log verifier key: %v", err)
	}
	verifiers := []note.Verifier{logVerifier}
	for _, k := range witnessKeys {
		w, err := newCosignatureVerifier(k)
		if err != nil {
			return nil, fmt.Errorf("witness key %q: %v", k, err)
		}
		verifiers = append(verifiers, w)
	}
	known := note.VerifierList(verifiers...)

	raw, err := get(base + "/checkpoint")
	if err != nil {
		return nil, err
	}
	cp, cosigners, err := openCheckpoint(raw, known, logVerifier)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %v", err)
	}
	if len(cosigners) < quorum {
		return nil, fmt.Errorf("checkpoint: %d valid cosignature(s) from known witnesses, quorum is %d", len(cosigners), quorum)
	}
	s := &summary{Origin: cp.origin, Size: cp.tree.N, Root: base64.StdEncoding.EncodeToString(cp.tree.Hash[:]), Cosigners: cosigners}

	if cp.tree.N == 0 {
		// RFC 9162 §2.1.1: the hash of the empty tree is SHA-256 of the empty string.
		if cp.tree.Hash != tlog.Hash(sha256.Sum256(nil)) {
			return nil, errors.New("empty tree with a root other than SHA-256(\"\")")
		}
		if entry >= 0 || oldFile != "" {
			return nil, errors.New("the log is empty: nothing to prove")
		}
		return s, nil
	}

	tiles := &tileFetcher{base: base, tiles: map[string][]byte{}}
	reader := tlog.TileHashReader(cp.tree, tiles)
	th, err := tlog.TreeHash(cp.tree.N, reader)
	if err != nil {
		return nil, fmt.Errorf("tiles: %v", err)
	}
	if th != cp.tree.Hash {
		return nil, fmt.Errorf("tiles give root %v, the checkpoint signs %v", th, cp.tree.Hash)
	}

	if entry >= 0 {
		if err := proveEntry(base, cp.tree, reader, entry); err != nil {
			return nil, fmt.Errorf("entry %d: %v", entry, err)
		}
		s.Entry = &entry
	}
	if oldFile != "" {
		oldRaw, err := os.ReadFile(oldFile)
		if err != nil {
			return nil, err
		}
		// The older checkpoint needs the log's signature only: witnesses may have lagged then.
		older, _, err := openCheckpoint(oldRaw, known, logVerifier)
		if err != nil {
			return nil, fmt.Errorf("older checkpoint: %v", err)
		}
		if err := proveConsistent(base, cp, older, reader); err != nil {
			return nil, fmt.Errorf("consistency %d -> %d: %v", older.tree.N, cp.tree.N, err)
		}
		s.OldSize = &older.tree.N
	}
	s.TilesFetched = tiles.fetched
	return s, nil
}

type checkpoint struct {
	origin string
	tree   tlog.Tree
}

// openCheckpoint verifies the note's signatures and parses its text. It returns the names of
// the witnesses whose cosignatures verified (note.Open has already refused the note if a
// signature from a known key does not verify).
func openCheckpoint(raw []byte, known note.Verifiers, logVerifier note.Verifier) (*checkpoint, []string, error) {
	n, err := note.Open(raw, known)
	if err != nil {
		return nil, nil, err
	}
	signedByLog := false
	cosigners := []string{}
	for _, sig := range n.Sigs {
		if sig.Name == logVerifier.Name() && sig.Hash == logVerifier.KeyHash() {
			signedByLog = true
		} else {
			// Open drops repeated signatures of one key: each is a distinct witness key.
			cosigners = append(cosigners, sig.Name)
		}
	}
	if !signedByLog {
		return nil, nil, errors.New("not signed by the log's key")
	}
	cp, err := parseCheckpoint(n.Text)
	if err != nil {
		return nil, nil, err
	}
	return cp, cosigners, nil
}

// parseCheckpoint reads a C2SP tlog-checkpoint body: origin, decimal size, base64 root hash,
// then optional extension lines.
func parseCheckpoint(text string) (*checkpoint, error) {
	lines := strings.Split(text, "\n")
	if len(lines) < 4 || lines[len(lines)-1] != "" || lines[0] == "" {
		return nil, errors.New("malformed checkpoint body")
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || size < 0 || strconv.FormatInt(size, 10) != lines[1] {
		return nil, fmt.Errorf("malformed tree size %q", lines[1])
	}
	root, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(root) != tlog.HashSize {
		return nil, fmt.Errorf("malformed root hash %q", lines[2])
	}
	cp := &checkpoint{origin: lines[0], tree: tlog.Tree{N: size}}
	copy(cp.tree.Hash[:], root)
	return cp, nil
}

// proveEntry checks that the log's entry `index` is leaf `index` of `tree`.
func proveEntry(base string, tree tlog.Tree, reader tlog.HashReader, index int64) error {
	if index >= tree.N {
		return fmt.Errorf("not in a tree of size %d", tree.N)
	}
	data, err := get(fmt.Sprintf("%s/entries/%d", base, index))
	if err != nil {
		return err
	}
	leaf := tlog.RecordHash(data) // RFC 9162 §2.1.1: SHA-256(0x00 || entry)
	proof, err := tlog.ProveRecord(tree.N, index, reader)
	if err != nil {
		return fmt.Errorf("proof from tiles: %v", err)
	}
	if err := tlog.CheckRecord(proof, tree.N, tree.Hash, index, leaf); err != nil {
		return fmt.Errorf("the served bytes are not leaf %d (proof from tiles): %v", index, err)
	}
	served, err := getProof(fmt.Sprintf("%s/proof/inclusion?index=%d&size=%d", base, index, tree.N))
	if err != nil {
		return err
	}
	if err := tlog.CheckRecord(tlog.RecordProof(served), tree.N, tree.Hash, index, leaf); err != nil {
		return fmt.Errorf("the log's inclusion proof: %v", err)
	}
	return checkBundle(base, tree, reader, index, data)
}

// checkBundle checks the C2SP tlog-tiles entry bundle holding `index`: each entry in it is
// proved to be its leaf of the signed tree, and entry `index` is `data`.
//
// Each entry gets a proof of its own (cheap: the tiles are fetched once) rather than being
// compared with the level-0 hashes ReadHashes returns: x/mod 0.7.0's TileHashReader skips the
// parent check of a child tile whenever two of the tree hash's subtrees share a tile (its loop
// starts at len(stx), an index into the de-duplicated tile list), so a hash it returns is only
// as good as the CheckRecord that follows.
func checkBundle(base string, tree tlog.Tree, reader tlog.HashReader, index int64, data []byte) error {
	bundle := index >> tileHeight
	first := bundle << tileHeight
	width := tree.N - first
	if width > 1<<tileHeight {
		width = 1 << tileHeight
	}
	body, err := get(base + "/" + c2spPath("entries", bundle, width))
	if err != nil {
		return err
	}
	for i := first; i < first+width; i++ {
		// Each entry is a big-endian uint16 length, then the entry.
		if len(body) < 2 || len(body) < 2+int(binary.BigEndian.Uint16(body)) {
			return fmt.Errorf("entry bundle %d is truncated at entry %d", bundle, i)
		}
		n := int(binary.BigEndian.Uint16(body))
		e := body[2 : 2+n]
		body = body[2+n:]
		proof, err := tlog.ProveRecord(tree.N, i, reader)
		if err != nil {
			return fmt.Errorf("proof from tiles: %v", err)
		}
		if err := tlog.CheckRecord(proof, tree.N, tree.Hash, i, tlog.RecordHash(e)); err != nil {
			return fmt.Errorf("entry bundle %d: entry %d is not leaf %d: %v", bundle, i, i, err)
		}
		if i == index && !bytes.Equal(e, data) {
			return fmt.Errorf("entry bundle %d and /entries/%d serve different bytes", bundle, index)
		}
	}
	if len(body) != 0 {
		return fmt.Errorf("entry bundle %d has bytes after its %d entries", bundle, width)
	}
	return nil
}

// proveConsistent checks that `older` is a prefix of `cp`.
func proveConsistent(base string, cp, older *checkpoint, reader tlog.HashReader) error {
	if older.origin != cp.origin {
		return fmt.Errorf("older checkpoint is for log %q, not %q", older.origin, cp.origin)
	}
	switch {
	case older.tree.N > cp.tree.N:
		return errors.New("the log rolled back: the older checkpoint is larger")
	case older.tree.N == cp.tree.N:
		if older.tree.Hash != cp.tree.Hash {
			return errors.New("two roots for one tree size: the log forked")
		}
		return nil
	case older.tree.N == 0:
		return nil // the empty tree is a prefix of every tree
	}
	proof, err := tlog.ProveTree(cp.tree.N, older.tree.N, reader)
	if err != nil {
		return fmt.Errorf("proof from tiles: %v", err)
	}
	if err := tlog.CheckTree(proof, cp.tree.N, cp.tree.Hash, older.tree.N, older.tree.Hash); err != nil {
		return fmt.Errorf("not a prefix (proof from tiles): %v", err)
	}
	served, err := getProof(fmt.Sprintf("%s/proof/consistency?first=%d&second=%d", base, older.tree.N, cp.tree.N))
	if err != nil {
		return err
	}
	if err := tlog.CheckTree(tlog.TreeProof(served), cp.tree.N, cp.tree.Hash, older.tree.N, older.tree.Hash); err != nil {
		return fmt.Errorf("the log's consistency proof: %v", err)
	}
	return nil
}

// cosignatureVerifier is a note.Verifier for C2SP tlog-cosignature's cosignature/v1 (signature
// type 0x04): the signature is an 8-byte big-endian POSIX timestamp, then an Ed25519 signature
// over "cosignature/v1\ntime <timestamp>\n" followed by the checkpoint's note text.
type cosignatureVerifier struct {
	name string
	hash uint32
	key  ed25519.PublicKey
}

const algCosignatureV1 = 0x04

// newCosignatureVerifier parses a witness vkey, `name+keyid+base64(0x04 || public key)`, and
// checks its key id: SHA-256(name || "\n" || 0x04 || public key)[:4].
func newCosignatureVerifier(vkey string) (*cosignatureVerifier, error) {
	parts := strings.SplitN(vkey, "+", 3)
	if len(parts) != 3 || parts[0] == "" {
		return nil, errors.New("not name+keyid+key")
	}
	name, idText, keyText := parts[0], parts[1], parts[2]
	id, err := strconv.ParseUint(idText, 16, 32)
	if err != nil || len(idText) != 8 {
		return nil, errors.New("malformed key id")
	}
	key, err := base64.StdEncoding.DecodeString(keyText)
	if err != nil || len(key) != 1+ed25519.PublicKeySize || key[0] != algCosignatureV1 {
		return nil, errors.New("not a cosignature/v1 (type 0x04) Ed25519 key")
	}
	sum := sha256.Sum256(append([]byte(name+"\n"), key...))
	if binary.BigEndian.Uint32(sum[:4]) != uint32(id) {
		return nil, errors.New("key id does not match the name and key")
	}
	return &cosignatureVerifier{name: name, hash: uint32(id), key: ed25519.PublicKey(key[1:])}, nil
}

func (v *cosignatureVerifier) Name() string    { return v.name }
func (v *cosignatureVerifier) KeyHash() uint32 { return v.hash }

func (v *cosignatureVerifier) Verify(msg, sig []byte) bool {
	if len(sig) != 8+ed25519.SignatureSize {
		return false
	}
	timestamp := binary.BigEndian.Uint64(sig[:8])
	if timestamp > 1<<63-1 { // tlog-cosignature: "MUST NOT exceed 2^63 - 1"
		return false
	}
	signed := append([]byte(fmt.Sprintf("cosignature/v1\ntime %d\n", timestamp)), msg...)
	return ed25519.Verify(v.key, signed, sig[8:])
}

// tileFetcher is a tlog.TileReader over HTTP that keeps what it fetched for the run. Keeping
// tiles before SaveTiles is safe here because nothing read from them is believed until a
// TreeHash comparison, CheckRecord or CheckTree against the signed root has passed; SaveTiles
// has nothing more to do.
type tileFetcher struct {
	base    string
	tiles   map[string][]byte
	fetched int
}

func (f *tileFetcher) Height() int { return tileHeight }

func (f *tileFetcher) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	data := make([][]byte, len(tiles))
	for i, t := range tiles {
		if t.H != tileHeight || t.L < 0 {
			return nil, fmt.Errorf("unexpected tile %s", t.Path())
		}
		path := c2spPath(strconv.Itoa(t.L), t.N, int64(t.W))
		if body, ok := f.tiles[path]; ok {
			data[i] = body
			continue
		}
		body, err := get(f.base + "/" + path)
		if err != nil {
			return nil, err
		}
		if len(body) != t.W*tlog.HashSize {
			return nil, fmt.Errorf("%s is %d bytes, not %d", path, len(body), t.W*tlog.HashSize)
		}
		f.tiles[path] = body
		data[i] = body
		f.fetched++
	}
	return data, nil
}

func (f *tileFetcher) SaveTiles([]tlog.Tile, [][]byte) {}

// c2spPath is the C2SP tlog-tiles path of a tile: tile/<L>/<N>[.p/<W>], where L is a level or
// "entries". x/mod's Tile.Path() names Go's checksum-database layout, tile/<H>/<L>/<N>[.p/<W>]
// with "data" for entries: the same N encoding (groups of three digits, "x" on all but the
// last) and partial-width suffix, plus the height, which C2SP fixes at 8 and leaves out.
func c2spPath(level string, n, width int64) string {
	goPath := tlog.Tile{H: tileHeight, L: 0, N: n, W: int(width)}.Path()
	rest := strings.TrimPrefix(goPath, fmt.Sprintf("tile/%d/0/", tileHeight))
	return "tile/" + level + "/" + rest
}

var client = &http.Client{Timeout: 10 * time.Second}

func get(url string) ([]byte, error) {
	resp, err := client.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<24))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %v", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s: %.200s", url, resp.Status, body)
	}
	return body, nil
}

// getProof reads the log's JSON proof: {"hashes": [base64, ...]}.
func getProof(url string) ([]tlog.Hash, error) {
	body, err := get(url)
	if err != nil {
		return nil, err
	}
	var doc struct {
		Hashes []string `json:"hashes"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("GET %s: %v", url, err)
	}
	proof := make([]tlog.Hash, len(doc.Hashes))
	for i, h := range doc.Hashes {
		raw, err := base64.StdEncoding.DecodeString(h)
		if err != nil || len(raw) != tlog.HashSize {
			return nil, fmt.Errorf("GET %s: malformed hash %q", url, h)
		}
		copy(proof[i][:], raw)
	}
	return proof, nil
}
