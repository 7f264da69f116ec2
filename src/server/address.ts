import { isIP, isIPv6 } from 'node:net';
import { UsageError } from '../errors.ts';

export interface ListenAddress {
  host: string;
  port: number;
}

const HOSTNAME =
  /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

/**
 * Parses `host:port`, `[ipv6]:port` or `:port` (every IPv4 interface, as in Go; write `[::]:port` for
 * IPv6). A bare IPv6 address must be bracketed: in `::1:2020` the port cannot be told from the address.
 * Port 0 is accepted (the system picks one), which tests use.
 */
export function parseListenAddress(addr: string): ListenAddress {
  function fail(why: string): never {
    throw new UsageError(
      `invalid listen address '${addr}': ${why}; expected host:port, e.g. 0.0.0.0:2020 or [::]:2020`,
    );
  }
  let host: string;
  let portText: string;
  if (addr.startsWith('[')) {
    const close = addr.indexOf(']');
    if (close < 0) fail('missing ]');
    host = addr.slice(1, close);
    if (!isIPv6(host)) fail(`'${host}' is not an IPv6 address`);
    if (addr[close + 1] !== ':') fail('missing :port after ]');
    portText = addr.slice(close + 2);
  } else {
    const colon = addr.lastIndexOf(':');
    if (colon < 0) fail('missing :port');
    host = addr.slice(0, colon);
    portText = addr.slice(colon + 1);
    if (host.includes(':')) fail('put an IPv6 address in brackets');
    if (host === '') host = '0.0.0.0';
    else if (isIP(host) === 0 && !HOSTNAME.test(host)) fail(`'${host}' is not a host name or IP address`);
  }
  if (!/^\d{1,5}$/.test(portText)) fail(portText === '' ? 'missing port' : `'${portText}' is not a port`);
  const port = Number(portText);
  if (port > 65535) fail(`port ${port} is above 65535`);
  return { host, port };
}
