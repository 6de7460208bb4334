// Types of crier-client (crier.js). See README.md beside this file.

export type Transport = "ws" | "sse" | "lp";
export type TransportOption = "auto" | Transport;
export type State = "connecting" | "open" | "reconnecting" | "closed";

/** One message as delivered to `onMessage`. */
export interface Message {
  /** Decimal id, increasing across all channels of a server; null only
   * for a bare WebSocket payload from a server that sent no envelope. */
  id: string | null;
  /** The channel; null on an EventSource subscription of several
   * channels (SSE does not carry it). */
  channel: string | null;
  /** Event name (publisher's `Event-Type`), null when none. */
  event: string | null;
  /** The payload: text, or base64 for a binary message. */
  data: string;
  /** Every channel of a message published to several (ws, lp). */
  channels?: string[];
  /** The publisher's Content-Type, when it gave one (ws, lp). */
  contentType?: string;
  /** "base64" when `data` is base64 of a binary payload (ws, lp; SSE
   * always sends binary payloads as base64 without saying so). */
  encoding?: "base64";
}

export interface MissedInfo {
  /** The id the subscription resumed from. */
  lastEventId: string | null;
  transport: Transport;
}

export interface StateInfo {
  transport?: Transport;
  /** Why the connection ended or the subscription closed. */
  reason?: string;
  /** Milliseconds before the next attempt ("connecting"/"reconnecting"). */
  delay?: number;
  attempt?: number;
  /** HTTP status when known (always 401 or 403 for an auth "closed"). */
  status?: number;
}

export interface SubscribeOptions {
  /** Default "auto": WebSocket, then EventSource, then long-poll, starting
   * with the one remembered to work for this base URL. */
  transport?: TransportOption;
  /** Sent as `?token=` on every subscribe request. */
  token?: string;
  /** Resume after this id (every stored message after it, then live). */
  lastEventId?: string;
  /** With no lastEventId: start with the last N stored messages of each
   * channel (`CH.bN`). */
  history?: number;
  /** Named SSE events to receive besides unnamed ones: EventSource only
   * dispatches names it has listeners for. WebSocket and long-poll deliver
   * every event without this. */
  events?: string[];
  /** Reconnect backoff (ms): attempt n waits random(0, min(cap, base·2ⁿ)).
   * Defaults: base 1000, cap 30000. */
  backoff?: { base?: number; cap?: number };
  /** A WebSocket/EventSource not open after this many ms failed (10000). */
  openTimeout?: number;
  /** Remember the transport that worked (localStorage, 24 h); default true. */
  remember?: boolean;
  onMessage?(msg: Message): void;
  onMissed?(info: MissedInfo): void;
  onState?(state: State, info: StateInfo): void;
  /** Implementations for runtimes without the browser globals. */
  WebSocket?: unknown;
  EventSource?: unknown;
  fetch?: typeof fetch;
}

export interface Subscription {
  readonly base: string;
  readonly channels: string[];
  /** The transport in use (or being tried). */
  readonly transport: Transport | null;
  readonly state: State | null;
  /** The id of the last message delivered (the resume point). */
  readonly lastEventId: string | null;
  readonly stats: { received: number; duplicates: number; connects: number };
  close(): void;
}

export interface PublishOptions {
  /** HTTP: `Authorization: Bearer`; WebSocket: `?token=`. */
  token?: string;
  /** Force a route. Default: "ws" when the token's `publish` claim covers
   * the channel (and no event/contentType/binary needs HTTP), else "http". */
  via?: "ws" | "http";
  /** HTTP only: `Event-Type`. */
  event?: string;
  /** HTTP only: `Content-Type`. */
  contentType?: string;
  /** WebSocket only: ms to wait for the server's echo (5000). */
  timeout?: number;
  WebSocket?: unknown;
  fetch?: typeof fetch;
}

/** HTTP: the server's reply. WebSocket: the echo's channel and id. */
export interface PublishResult {
  id: string;
  channel?: string;
  channels?: Array<Record<string, unknown>>;
  subscribers?: number;
  published_messages?: number;
  stored_messages?: number;
  via?: "ws";
  [key: string]: unknown;
}

export function subscribe(
  base: string | null | undefined,
  channels: string | string[],
  options?: SubscribeOptions
): Subscription;

export function publish(
  base: string | null | undefined,
  channel: string,
  data: string | ArrayBuffer | ArrayBufferView | Blob | unknown,
  options?: PublishOptions
): Promise<PublishResult>;

export const version: string;

export const defaults: {
  backoffBaseMs: number;
  backoffCapMs: number;
  openTimeoutMs: number;
  rememberMs: number;
  publishTimeoutMs: number;
};

declare const crier: {
  subscribe: typeof subscribe;
  publish: typeof publish;
  version: string;
  defaults: typeof defaults;
};
export default crier;

declare global {
  interface Window {
    crier: typeof crier;
  }
}
