// ES module entry of crier-client. crier.js is the one implementation: a
// script that works both as CommonJS (Node, bundlers: its module.exports
// becomes this namespace's default) and as a browser module (no exports,
// it defines globalThis.crier), so read whichever of the two it gave.
import * as loaded from "./crier.js";

const crier = (loaded && loaded.default) || globalThis.crier;

export default crier;
export const subscribe = crier.subscribe;
export const publish = crier.publish;
export const version = crier.version;
