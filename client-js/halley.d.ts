// Type declarations for halley.js, the Halley browser client.

export type Transport = "auto" | "ws" | "sse" | "stream" | "iframe" | "longpoll" | "poll";

/** Why a publish failed: the server's word for it, or `unknown` when the connection
 * went before the answer came (the event may or may not be stored). */
export type PublishErrorCode =
  | "forbidden" | "closed" | "too_large" | "bad_request" | "rate_limited" | "unavailable" | "unknown";

export interface PublishError extends Error { code: PublishErrorCode }

export type State = "connecting" | "live" | "backoff" | "failed" | "ended" | "closed";

export interface Options {
  /** Which transport; `auto` picks the best the browser and origin allow, and falls back. */
  transport?: Transport;
  /** The last id seen: one for every channel, or one per channel. Absent: only new events. */
  since?: number | number[] | null;
  /** Share one connection between the tabs of this origin (default true). */
  share?: boolean;
  /** Milliseconds between polls with `poll` (default 10000). */
  pollInterval?: number;
  /** Milliseconds a stream may stay silent before it counts as buffered (default 4000). */
  probeTimeout?: number;
  /** Back-off bounds in milliseconds (defaults 500 and 30000). */
  minDelay?: number;
  maxDelay?: number;
  /** Failures in a row before `failed` (default 8). */
  maxFailures?: number;
  /** A signed token for protected channels: a string, or a function returning one (or
   * a promise of one), called again when the token is past its `exp`, refused (401) or
   * ended by the server (WebSocket close 4001). */
  token?: string | (() => string | Promise<string>) | null;
}

export interface Message { type: "message"; channel: string; id: number; data: string }
export interface Gap { type: "gap"; channel: string; from: number; to: number }
export interface Reset { type: "reset"; channel: string; id: number }
export interface Closed { type: "closed"; channel: string; id: number }
export interface Status {
  state: State;
  transport: Transport;
  /** When the next poll or retry happens (ms since the epoch), if one is scheduled. */
  at: number | null;
  /** Set when another tab holds the connection. */
  shared?: boolean;
}

export interface Events {
  message: Message;
  gap: Gap;
  reset: Reset;
  closed: Closed;
  end: { cursor: string };
  status: Status;
  request: Transport;
}

export interface Subscription {
  readonly state: State;
  readonly transport: Transport;
  on<K extends keyof Events>(event: K, listener: (value: Events[K]) => void): this;
  off<K extends keyof Events>(event: K, listener: (value: Events[K]) => void): this;
  /** Stops for good; another tab takes over a shared connection. */
  close(): void;
  /** Starts again after `failed`. */
  retry(): void;
  /** Publishes `data` to `channel` (over the WebSocket when there is one, else
   * `POST /pub/...`; through the leader tab when shared). Resolves with the event's id
   * once the server has stored it; rejects with a `PublishError`. */
  publish(channel: string, data: string): Promise<number>;
}

export function subscribe(url: string, channels: string | string[], options?: Options): Subscription;
export function indicator(subscription: Subscription, element: HTMLElement): HTMLElement;
export const version: string;

declare const Halley: {
  subscribe: typeof subscribe;
  indicator: typeof indicator;
  version: string;
};
export default Halley;
