/**
 * The reason a call is aborted with when its endpoint stopped answering it (a keep-alive renewal
 * left unanswered): the pipeline then passes that endpoint over until it answers again, so the
 * call's next attempt goes to another member instead of waiting for the connection's ping.
 */
export class EndpointStalled extends Error {
  override name = "EndpointStalled";
}
