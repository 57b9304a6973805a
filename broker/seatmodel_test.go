package broker_test

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/seatbroker/seatbroker/broker/protocol"
)

// seatModel is a reference model of SPEC.md's seat rules and session
// states (and the rules docs/design.md chose where SPEC is silent), written
// from those documents alone, not from the account code. The model-based
// test (seatrules_model_test.go) drives it and the real broker with the
// same operations and compares them after every step.
//
// Time is in steps: what runs out (a lease, a notice, a standby or paused
// time) runs out at the end of a step, all at once (lapse, expire), or
// never. A PPU minute is an hour, so a PPU session is billed one minute
// when it is first active on PPU (the grant that starts its first minute)
// and never again.
type seatModel struct {
	seats   int64
	mode    string
	ppu     bool
	promote bool
	balance int64
	used    int64 // prepaid seats held
	// the account's view and control defaults (SPEC: domain and own)
	view, control string

	users []*modelUser
	sess  map[string]*modelSess
	order []string // session ids, in the order they were opened
	held  map[string]*modelSeat
	queue []string // seat keys on PPU, longest waiting first
}

type modelUser struct {
	id       string
	name     string
	owner    bool
	admin    bool
	maxSeats *int
	blocked  bool
}

type modelSess struct {
	id     string
	user   int
	device string
	state  string
	kind   string // while holding a seat
	reason string
	billed int64
	key    string // its seat key while it holds a seat
}

type modelSeat struct {
	kind string
	user int
	sids []string
}

// Bounds docs/design.md sets on one user (so sharing and PPU cannot
// fill Redis).
const (
	modelMaxShare    = 100
	modelMaxUserKeys = 100
)

func newSeatModel(seats int64, mode string, ppu bool) *seatModel {
	return &seatModel{seats: seats, mode: mode, ppu: ppu, promote: true,
		view: protocol.ScopeDomain, control: protocol.ScopeOwn,
		sess: map[string]*modelSess{}, held: map[string]*modelSeat{}}
}

func holds(state string) bool {
	return state == protocol.StateStandby || state == protocol.StateActive || state == protocol.StateTerminating
}

// keyOf is the seat key of a session by the counting mode (SPEC, rule 1).
func (m *seatModel) keyOf(s *modelSess) string {
	switch m.mode {
	case protocol.ModeUser:
		return fmt.Sprintf("u%d", s.user)
	case protocol.ModeSession:
		return "s:" + s.id
	}
	return fmt.Sprintf("u%d/%s", s.user, s.device)
}

func (m *seatModel) userKeys(u int) int {
	n := 0
	for _, st := range m.held {
		if st.user == u {
			n++
		}
	}
	return n
}

// seat takes a seat for s by SPEC's rules 1 to 5 and puts it in state
// (standby or active); it answers "" or the code of the denial, and
// changes nothing when it denies.
func (m *seatModel) seat(s *modelSess, state string) string {
	u := m.users[s.user]
	if u.blocked {
		return "user_blocked"
	}
	k := m.keyOf(s)
	if st, ok := m.held[k]; ok {
		// rule 2: share the key's seat, prepaid or PPU
		if st.kind == protocol.KindPPU {
			if !m.ppu {
				return "account_limit" // design.md: with PPU off no new session gets PPU
			}
			if m.balance == 0 {
				return "ppu_exhausted"
			}
		}
		if len(st.sids) >= modelMaxShare {
			return "user_limit"
		}
		st.sids = append(st.sids, s.id)
		m.take(s, k, st.kind, state)
		return ""
	}
	n := m.userKeys(s.user)
	if (u.maxSeats != nil && n >= *u.maxSeats) || n >= modelMaxUserKeys {
		return "user_limit"
	}
	switch {
	case m.used < m.seats:
		m.used++
		m.held[k] = &modelSeat{kind: protocol.KindPrepaid, user: s.user, sids: []string{s.id}}
		m.take(s, k, protocol.KindPrepaid, state)
	case m.ppu && m.balance > 0:
		m.held[k] = &modelSeat{kind: protocol.KindPPU, user: s.user, sids: []string{s.id}}
		m.queue = append(m.queue, k)
		m.take(s, k, protocol.KindPPU, state)
	case m.ppu:
		return "ppu_exhausted"
	default:
		return "account_limit"
	}
	return ""
}

func (m *seatModel) take(s *modelSess, k, kind, state string) {
	s.key, s.kind, s.state = k, kind, state
	if state == protocol.StateActive && kind == protocol.KindPPU {
		m.bill(s)
	}
}

// bill bills the first minute of a session that becomes active on PPU (a
// minute is an hour here: no second minute starts); at balance 0 every
// running PPU session gets the notice and standby ones end.
func (m *seatModel) bill(s *modelSess) {
	if s.billed > 0 {
		return // its first minute goes on (a resumed session continues its minute)
	}
	s.billed = 1
	m.balance--
	if m.balance == 0 {
		m.exhaust()
	}
}

func (m *seatModel) exhaust() {
	for _, id := range m.order {
		s := m.sess[id]
		if !holds(s.state) || s.kind != protocol.KindPPU {
			continue
		}
		switch s.state {
		case protocol.StateStandby:
			m.end(s, protocol.ReasonPPUExhausted)
		case protocol.StateActive:
			s.state, s.reason = protocol.StateTerminating, protocol.ReasonPPUExhausted
		}
	}
}

// release takes s off its seat (it pauses or ends): the seat frees with
// its last session (rule 6), and a freed prepaid seat promotes (rule 7).
func (m *seatModel) release(s *modelSess) {
	st := m.held[s.key]
	st.sids = slices.DeleteFunc(st.sids, func(id string) bool { return id == s.id })
	k := s.key
	s.key, s.kind = "", ""
	if len(st.sids) > 0 {
		return
	}
	delete(m.held, k)
	if st.kind == protocol.KindPrepaid {
		m.used--
		m.promoteWaiting()
	} else {
		m.queue = slices.DeleteFunc(m.queue, func(q string) bool { return q == k })
	}
}

func (m *seatModel) promoteWaiting() {
	for m.promote && m.used < m.seats && len(m.queue) > 0 {
		k := m.queue[0]
		m.queue = m.queue[1:]
		st := m.held[k]
		st.kind = protocol.KindPrepaid
		m.used++
		for _, id := range st.sids {
			m.sess[id].kind = protocol.KindPrepaid
		}
	}
}

func (m *seatModel) end(s *modelSess, reason string) {
	if holds(s.state) {
		m.release(s)
	}
	s.state, s.reason = protocol.StateEnded, reason
}

// open opens a session (a standby one with a code).
func (m *seatModel) open(id string, user int, device string, withCode bool) (string, *modelSess) {
	s := &modelSess{id: id, user: user, device: device}
	state := protocol.StateActive
	if withCode {
		state = protocol.StateStandby
	}
	// filed first: a grant that bills the last minute gives the notice to
	// every running PPU session, itself included
	m.sess[id] = s
	m.order = append(m.order, id)
	if code := m.seat(s, state); code != "" {
		delete(m.sess, id)
		m.order = m.order[:len(m.order)-1]
		return code, nil
	}
	return "", s
}

// join: the remote side joins a standby session by its code.
func (m *seatModel) join(s *modelSess) string {
	if s.state != protocol.StateStandby {
		return "not_found" // codes are single use and die with standby
	}
	s.state = protocol.StateActive
	if s.kind == protocol.KindPPU {
		m.bill(s)
	}
	return ""
}

// pause: only the session's own user, only an active session.
func (m *seatModel) pause(s *modelSess, by int) string {
	if by != s.user {
		return "not_found"
	}
	if s.state != protocol.StateActive {
		return "invalid_request"
	}
	m.release(s)
	s.state = protocol.StatePaused
	return ""
}

// resume: only the session's own user, only a paused session, with a seat
// by the seat rules; refused, it stays paused.
func (m *seatModel) resume(s *modelSess, by int) string {
	if by != s.user {
		return "not_found"
	}
	if s.state != protocol.StatePaused {
		return "invalid_request"
	}
	return m.seat(s, protocol.StateActive)
}

// closeBy: a participant (its own user) ends the session at once, also
// during the notice; closing an ended session changes nothing.
func (m *seatModel) closeBy(s *modelSess, by int) string {
	if by != s.user {
		return "not_found"
	}
	if s.state != protocol.StateEnded {
		m.end(s, protocol.ReasonClosed)
	}
	return ""
}

// renew: a heartbeat by the holder of the session's lease renews it and
// changes nothing else; one by a holder a grant replaced is refused
// (design.md, Fencing), and another user's session is not found.
func (m *seatModel) renew(s *modelSess, by int, stale bool) string {
	switch {
	case by != s.user:
		return "not_found"
	case stale:
		return "forbidden"
	}
	return ""
}

// closeByRemote: the remote side closes the session it is in, at once,
// but not while it is paused (design.md: only its user acts on it then).
func (m *seatModel) closeByRemote(s *modelSess) string {
	switch s.state {
	case protocol.StatePaused:
		return "forbidden"
	case protocol.StateEnded:
	default:
		m.end(s, protocol.ReasonClosed)
	}
	return ""
}

// staleHolder: a pause or close by a holder whose grant a resume replaced
// is refused and changes nothing (design.md, Fencing).
func (m *seatModel) staleHolder() string {
	return "forbidden"
}

// scopes are a user's view and control: the owner and admins always
// domain, members the account's defaults (SPEC, Who may see and do what).
func (m *seatModel) scopes(u int) (view, control int) {
	if m.users[u].owner || m.users[u].admin {
		return 2, 2
	}
	rank := map[string]int{protocol.ScopeNone: 0, protocol.ScopeOwn: 1, protocol.ScopeDomain: 2}
	return rank[m.view], rank[m.control]
}

func (m *seatModel) canView(by int, s *modelSess) bool {
	view, _ := m.scopes(by)
	if s.user == by {
		return view >= 1
	}
	return s.state != protocol.StatePaused && view >= 2 // others' paused sessions are hidden
}

func (m *seatModel) canControl(by int, s *modelSess) bool {
	_, control := m.scopes(by)
	if s.user == by {
		return m.canView(by, s) && control >= 1
	}
	return m.canView(by, s) && control >= 2
}

// endBy is End Selected Sessions by user by: an active session gets the
// notice, a standby or paused one ends at once, one on notice or ended
// stays as it is.
func (m *seatModel) endBy(s *modelSess, by int) string {
	if !m.canView(by, s) {
		return "not_found"
	}
	if !m.canControl(by, s) {
		return "forbidden"
	}
	switch s.state {
	case protocol.StateActive:
		s.state, s.reason = protocol.StateTerminating, protocol.ReasonTerminated
	case protocol.StateStandby, protocol.StatePaused:
		m.end(s, protocol.ReasonTerminated)
	}
	return ""
}

// block ends all of a user's sessions the same way (user_blocked).
func (m *seatModel) block(u int) {
	m.users[u].blocked = true
	for _, id := range m.order {
		s := m.sess[id]
		if s.user != u {
			continue
		}
		switch s.state {
		case protocol.StateActive:
			s.state, s.reason = protocol.StateTerminating, protocol.ReasonUserBlocked
		case protocol.StateStandby, protocol.StatePaused:
			m.end(s, protocol.ReasonUserBlocked)
		}
	}
}

// lapse: nobody heartbeats and every lease runs out; active and
// terminating sessions end lease_lost (SPEC, Liveness).
func (m *seatModel) lapse() {
	for _, id := range m.order {
		if s := m.sess[id]; s.state == protocol.StateActive || s.state == protocol.StateTerminating {
			m.end(s, protocol.ReasonLeaseLost)
		}
	}
}

// expire: standby and paused times run out (expired), and every notice
// (its sessions end with its reason).
func (m *seatModel) expire() {
	for _, id := range m.order {
		switch s := m.sess[id]; s.state {
		case protocol.StateStandby, protocol.StatePaused:
			m.end(s, protocol.ReasonExpired)
		case protocol.StateTerminating:
			m.end(s, s.reason)
		}
	}
}

func (m *seatModel) setSeats(n int64) {
	m.seats = n // lowering revokes nothing (rule 8)
	m.promoteWaiting()
}

func (m *seatModel) setPromote(on bool) {
	m.promote = on
	m.promoteWaiting()
}

// setMode: the counting mode changes only while no seat is held.
func (m *seatModel) setMode(mode string) string {
	if len(m.held) > 0 && mode != m.mode {
		return "invalid_request" // design.md; setting the mode it has changes nothing
	}
	m.mode = mode
	return ""
}

// seatLines is every held seat as "kind user sids...", sorted: what can
// be compared with the store whatever its seat keys look like.
func (m *seatModel) seatLines() []string {
	var out []string
	for _, st := range m.held {
		out = append(out, seatLine(st.kind, m.users[st.user].id, st.sids))
	}
	sort.Strings(out)
	return out
}

func (m *seatModel) queueLines() []string {
	out := make([]string, 0, len(m.queue))
	for _, k := range m.queue {
		st := m.held[k]
		out = append(out, seatLine(st.kind, m.users[st.user].id, st.sids))
	}
	return out
}

func seatLine(kind, user string, sids []string) string {
	s := slices.Clone(sids)
	sort.Strings(s)
	return kind + " " + user + " " + strings.Join(s, ",")
}
