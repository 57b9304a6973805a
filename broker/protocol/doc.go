// Package protocol holds the wire types seatbroker's server and clients
// share: error codes, the REST bodies and the websocket messages. It
// imports only the standard library.
package protocol
