package wamock

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"sort"
	"strconv"
	"sync"
	"time"

	"go.mau.fi/whatsmeow/appstate"
	"go.mau.fi/whatsmeow/appstate/lthash"
	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/proto/waServerSync"
	"go.mau.fi/whatsmeow/proto/waSyncAction"
	"go.mau.fi/whatsmeow/types"
	"golang.org/x/crypto/hkdf"
	"google.golang.org/protobuf/proto"
)

// AppStateMutation is one change in an app state patch.
type AppStateMutation struct {
	// Operation is SET or REMOVE.
	Operation waServerSync.SyncdMutation_SyncdOperation
	// Index identifies the entry, e.g. ["nct_salt_sync"] or ["mute", jid].
	Index []string
	// Value is the action; its timestamp is filled in when unset. It may
	// carry unknown fields (fields whatsmeow's protobufs lack).
	Value *waSyncAction.SyncActionValue
	// Version is the action's schema version.
	Version int32
}

// appStateServer keeps the app state collections the phone writes and the
// clients sync, encrypted with the phone's app state key.
type appStateServer struct {
	mu          sync.Mutex
	keyID       []byte
	keyData     []byte
	keyTime     int64
	collections map[appstate.WAPatchName]*collection
}

// collection is one app state collection: its patch history and, for
// snapshots, its live records and LT hash.
type collection struct {
	version uint64
	hash    [128]byte
	patches []*waServerSync.SyncdPatch // patches[i] has version i+1
	records map[string]*waServerSync.SyncdRecord
}

func newAppStateServer() *appStateServer {
	keyID := make([]byte, 6)
	keyData := make([]byte, 32)
	_, _ = rand.Read(keyID[2:])
	_, _ = rand.Read(keyData)
	return &appStateServer{
		keyID:       keyID,
		keyData:     keyData,
		keyTime:     time.Now().UnixMilli(),
		collections: make(map[appstate.WAPatchName]*collection),
	}
}

// SeedChat is the chat the seed mutation of regular_high mutes: the PSA
// account, which no test talks to.
var SeedChat = types.NewJID("0", types.DefaultUserServer)

// seed gives regular_high its first patch, like the content a real account
// always has.
func (as *appStateServer) seed() error {
	_, err := as.apply(appstate.WAPatchRegularHigh, []AppStateMutation{{
		Operation: waServerSync.SyncdMutation_SET,
		Index:     []string{appstate.IndexMute, SeedChat.String()},
		Value: &waSyncAction.SyncActionValue{MuteAction: &waSyncAction.MuteAction{
			Muted: proto.Bool(true), MuteEndTimestamp: proto.Int64(-1),
		}},
		Version: 2,
	}})
	return err
}

// mutationKeys are the five keys expanded from an app state sync key.
type mutationKeys struct {
	index, valueEnc, valueMAC, snapshotMAC, patchMAC []byte
}

func expandMutationKeys(keyData []byte) (mutationKeys, error) {
	out := make([]byte, 160)
	if _, err := io.ReadFull(hkdf.New(sha256.New, keyData, nil, []byte("WhatsApp Mutation Keys")), out); err != nil {
		return mutationKeys{}, fmt.Errorf("expand app state key: %w", err)
	}
	return mutationKeys{out[0:32], out[32:64], out[64:96], out[96:128], out[128:160]}, nil
}

func hmacSum(newHash func() hash.Hash, key []byte, parts ...[]byte) []byte {
	mac := hmac.New(newHash, key)
	for _, p := range parts {
		mac.Write(p)
	}
	return mac.Sum(nil)
}

func u64(v uint64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, v)
	return b
}

// valueMAC authenticates an encrypted value: HMAC-SHA512 over the operation
// (+1), the key ID, the data and the key ID's length (+1), cut to 32 bytes.
func valueMAC(op waServerSync.SyncdMutation_SyncdOperation, data, keyID, key []byte) []byte {
	return hmacSum(sha512.New, key, []byte{byte(op) + 1}, keyID, data, u64(uint64(len(keyID)+1)))[:32]
}

func snapshotMAC(keys mutationKeys, ltHash []byte, version uint64, name appstate.WAPatchName) []byte {
	return hmacSum(sha256.New, keys.snapshotMAC, ltHash, u64(version), []byte(name))
}

// apply encodes the mutations as the next patch of the collection.
func (as *appStateServer) apply(name appstate.WAPatchName, muts []AppStateMutation) (uint64, error) {
	as.mu.Lock()
	defer as.mu.Unlock()
	keys, err := expandMutationKeys(as.keyData)
	if err != nil {
		return 0, err
	}
	col := as.collections[name]
	if col == nil {
		col = &collection{records: make(map[string]*waServerSync.SyncdRecord)}
		as.collections[name] = col
	}
	records := make(map[string]*waServerSync.SyncdRecord, len(col.records))
	for k, v := range col.records {
		records[k] = v
	}
	ltHash := col.hash
	var added, removed, valueMACs [][]byte
	syncd := make([]*waServerSync.SyncdMutation, 0, len(muts))
	for i, mut := range muts {
		indexJSON, err := json.Marshal(mut.Index)
		if err != nil {
			return 0, fmt.Errorf("marshal index of mutation %d: %w", i, err)
		}
		value := &waSyncAction.SyncActionValue{}
		if mut.Value != nil {
			value = proto.Clone(mut.Value).(*waSyncAction.SyncActionValue)
		}
		if value.Timestamp == nil {
			value.Timestamp = proto.Int64(time.Now().UnixMilli())
		}
		plaintext, err := proto.Marshal(&waSyncAction.SyncActionData{
			Index:   indexJSON,
			Value:   value,
			Padding: []byte{},
			Version: proto.Int32(mut.Version),
		})
		if err != nil {
			return 0, fmt.Errorf("marshal mutation %d: %w", i, err)
		}
		iv := make([]byte, 16)
		_, _ = rand.Read(iv)
		ciphertext, err := cbcEncrypt(keys.valueEnc, iv, plaintext)
		if err != nil {
			return 0, err
		}
		content := append(iv, ciphertext...)
		vMAC := valueMAC(mut.Operation, content, as.keyID, keys.valueMAC)
		indexMAC := hmacSum(sha256.New, keys.index, indexJSON)
		record := &waServerSync.SyncdRecord{
			Index: &waServerSync.SyncdIndex{Blob: indexMAC},
			Value: &waServerSync.SyncdValue{Blob: append(content, vMAC...)},
			KeyID: &waServerSync.KeyId{ID: as.keyID},
		}
		// The LT hash covers the value MACs of the live SET records: a new
		// SET adds its MAC, and any op on an index drops the MAC of the
		// record it replaces.
		key := hex.EncodeToString(indexMAC)
		if prev, ok := records[key]; ok {
			blob := prev.GetValue().GetBlob()
			removed = append(removed, blob[len(blob)-32:])
		}
		if mut.Operation == waServerSync.SyncdMutation_SET {
			added = append(added, vMAC)
			records[key] = record
		} else {
			delete(records, key)
		}
		valueMACs = append(valueMACs, vMAC)
		syncd = append(syncd, &waServerSync.SyncdMutation{Operation: mut.Operation.Enum(), Record: record})
	}
	lthash.WAPatchIntegrity.SubtractThenAddInPlace(ltHash[:], removed, added)
	version := col.version + 1
	sMAC := snapshotMAC(keys, ltHash[:], version, name)
	patchParts := append(append([][]byte{sMAC}, valueMACs...), u64(version), []byte(name))
	patch := &waServerSync.SyncdPatch{
		Version:     &waServerSync.SyncdVersion{Version: proto.Uint64(version)},
		Mutations:   syncd,
		SnapshotMAC: sMAC,
		PatchMAC:    hmacSum(sha256.New, keys.patchMAC, patchParts...),
		KeyID:       &waServerSync.KeyId{ID: as.keyID},
	}
	col.version = version
	col.hash = ltHash
	col.records = records
	col.patches = append(col.patches, patch)
	return version, nil
}

// snapshotOf renders the live records of a collection as a snapshot.
func (as *appStateServer) snapshotOf(name appstate.WAPatchName) (*waServerSync.SyncdSnapshot, error) {
	as.mu.Lock()
	defer as.mu.Unlock()
	col := as.collections[name]
	keys, err := expandMutationKeys(as.keyData)
	if err != nil {
		return nil, err
	}
	keysSorted := make([]string, 0, len(col.records))
	for k := range col.records {
		keysSorted = append(keysSorted, k)
	}
	sort.Strings(keysSorted)
	records := make([]*waServerSync.SyncdRecord, 0, len(keysSorted))
	for _, k := range keysSorted {
		records = append(records, col.records[k])
	}
	return &waServerSync.SyncdSnapshot{
		Version: &waServerSync.SyncdVersion{Version: proto.Uint64(col.version)},
		Records: records,
		Mac:     snapshotMAC(keys, col.hash[:], col.version, name),
		KeyID:   &waServerSync.KeyId{ID: as.keyID},
	}, nil
}

// collectionState returns the version and the patches after fromVersion.
func (as *appStateServer) collectionState(name appstate.WAPatchName, fromVersion uint64) (uint64, []*waServerSync.SyncdPatch) {
	as.mu.Lock()
	defer as.mu.Unlock()
	col := as.collections[name]
	if col == nil {
		return 0, nil
	}
	if fromVersion >= col.version {
		return col.version, nil
	}
	return col.version, append([]*waServerSync.SyncdPatch(nil), col.patches[fromVersion:]...)
}

// AppStateVersion is the server's current version of a collection.
func (s *Server) AppStateVersion(name appstate.WAPatchName) uint64 {
	version, _ := s.appState.collectionState(name, ^uint64(0))
	return version
}

// handleAppStateIQ answers <iq xmlns="w:sync:app:state" type="set"><sync>
// <collection name=.. version=.. return_snapshot=../></sync></iq>. A
// snapshot request for a collection with content gets a snapshot blob on the
// media host; otherwise the reply lists the patches after the client's
// version.
func (s *Server) handleAppStateIQ(ctx context.Context, iq *waBinary.Node) *waBinary.Node {
	sync, ok := iq.GetOptionalChildByTag("sync")
	if !ok {
		return ResultIQ(iq)
	}
	var collections []waBinary.Node
	for _, req := range sync.GetChildren() {
		if req.Tag != "collection" {
			continue
		}
		name := appstate.WAPatchName(strAttr(&req, "name"))
		wantSnapshot := strAttr(&req, "return_snapshot") == "true"
		from, _ := strconv.ParseUint(strAttr(&req, "version"), 10, 64)
		if wantSnapshot {
			from = 0
		}
		version, patches := s.appState.collectionState(name, from)
		node := waBinary.Node{Tag: "collection", Attrs: waBinary.Attrs{
			"name": string(name), "version": version, "has_more_patches": false,
		}}
		var content []waBinary.Node
		if wantSnapshot && version > 0 {
			snap, err := s.appStateSnapshotNode(name)
			if err != nil {
				s.recordError(fmt.Errorf("app state snapshot of %s: %w", name, err))
				return ErrorIQ(iq, 500, "internal-server-error")
			}
			content = append(content, *snap)
		} else if len(patches) > 0 {
			patchNodes := make([]waBinary.Node, 0, len(patches))
			for _, p := range patches {
				raw, err := proto.Marshal(p)
				if err != nil {
					s.recordError(fmt.Errorf("marshal app state patch: %w", err))
					return ErrorIQ(iq, 500, "internal-server-error")
				}
				patchNodes = append(patchNodes, waBinary.Node{Tag: "patch", Content: raw})
			}
			content = append(content, waBinary.Node{Tag: "patches", Content: patchNodes})
		}
		if len(content) > 0 {
			node.Content = content
		}
		collections = append(collections, node)
	}
	return ResultIQ(iq, waBinary.Node{Tag: "sync", Content: collections})
}

// appStateSnapshotNode uploads the collection's snapshot to the media host
// and returns <snapshot> with the blob reference.
func (s *Server) appStateSnapshotNode(name appstate.WAPatchName) (*waBinary.Node, error) {
	snap, err := s.appState.snapshotOf(name)
	if err != nil {
		return nil, err
	}
	raw, err := proto.Marshal(snap)
	if err != nil {
		return nil, fmt.Errorf("marshal snapshot: %w", err)
	}
	media, err := s.media.upload(raw, mediaTypeAppState)
	if err != nil {
		return nil, err
	}
	ref, err := proto.Marshal(&waServerSync.ExternalBlobReference{
		MediaKey:      media.MediaKey,
		DirectPath:    proto.String(media.DirectPath),
		Handle:        proto.String("wamock"),
		FileSizeBytes: proto.Uint64(media.FileLength),
		FileSHA256:    media.FileSHA256,
		FileEncSHA256: media.FileEncSHA256,
	})
	if err != nil {
		return nil, fmt.Errorf("marshal blob reference: %w", err)
	}
	return &waBinary.Node{Tag: "snapshot", Content: ref}, nil
}

// serverSyncNotification tells clients a collection changed.
func serverSyncNotification(name appstate.WAPatchName, version uint64) waBinary.Node {
	return waBinary.Node{Tag: "notification", Attrs: waBinary.Attrs{
		"from": types.ServerJID,
		"type": "server_sync",
		"id":   newStanzaID(),
		"t":    time.Now().Unix(),
	}, Content: []waBinary.Node{{Tag: "collection", Attrs: waBinary.Attrs{
		"name": string(name), "version": version,
	}}}}
}
