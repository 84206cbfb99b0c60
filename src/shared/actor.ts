/**
 * Who makes a change through the management API. Every change a management service makes writes
 * an audit entry naming its actor; the HTTP edge builds the actor from the verified token and the
 * connection.
 */
export interface Actor {
  principalId: string;
  principalName: string;
  /** The client's address as the server saw it (`unknown` when the connection had none). */
  clientAddress: string;
}
