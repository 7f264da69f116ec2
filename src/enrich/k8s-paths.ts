import type { PodRef } from './types.ts';

// Names as the API server validates them. Parsing is strict on purpose: a path that merely looks like a kubelet
// path (a user's `a_b_c/x/0.log`) must not be enriched with made-up pod metadata.
const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
// API pods have RFC 4122 uids; static pods are logged under the kubelet's config hash (32 hex digits, no dashes),
// which is also what their mirror pod's `kubernetes.io/config.mirror` annotation holds.
const POD_UID = /^[0-9a-fA-F][0-9a-fA-F-]{0,63}$/;
// `<restart>.log`, and the kubelet's rotated siblings `<restart>.log.<YYYYMMDD-hhmmss>` (gzipped: `.gz`). The
// `.tmp` file the kubelet compresses into is not matched: it is renamed to `.gz` once complete.
const LOG_FILE = /^(\d{1,9})\.log(?:\.\d{8}-\d{6}(?:\.gz)?)?$/;
// `/var/log/containers/<pod>_<namespace>_<container>-<64 hex container id>.log`
const LINK_FILE = /^([^_/]+)_([^_/]+)_([^_/]+)-([0-9a-f]{64})\.log$/;

/**
 * The pod a kubelet log file belongs to, from its path alone:
 * `<pods dir>/<namespace>_<pod-name>_<pod-uid>/<container>/<restart-count>.log` and its rotated siblings
 * (`0.log.20240102-030405`, `0.log.20240102-030405.gz`). The pods directory can be anywhere (only the last three
 * components are read). Namespace and pod names are DNS-1123 names, which cannot contain '_', so the pod
 * directory splits on '_' into exactly three parts; uids have dashes but no '_'.
 *
 * `/var/log/containers/*.log` symlink names are not pod paths (no uid, no restart count): they give undefined here;
 * see parseContainerLinkName for what they do carry.
 */
export function parsePodLogPath(path: string): PodRef | undefined {
  const parts = path.split('/');
  const n = parts.length;
  if (n < 3) return undefined;
  const podDir = parts[n - 3]!;
  const container = parts[n - 2]!;
  const file = parts[n - 1]!;
  const fileMatch = LOG_FILE.exec(file);
  if (fileMatch === null || !DNS1123_LABEL.test(container)) return undefined;
  const ids = podDir.split('_');
  if (ids.length !== 3) return undefined;
  const [namespace, podName, podUid] = ids as [string, string, string];
  if (!DNS1123_LABEL.test(namespace) || !DNS1123_SUBDOMAIN.test(podName) || !POD_UID.test(podUid)) {
    return undefined;
  }
  return { namespace, podName, podUid, container, restartCount: Number(fileMatch[1]) };
}

/** What a `/var/log/containers` symlink's name says: no pod uid and no restart count, but the container id. */
export interface ContainerLinkRef {
  namespace: string;
  podName: string;
  container: string;
  /** 64 hex digits, without a runtime prefix */
  containerId: string;
}

/**
 * Parses a `/var/log/containers/<pod>_<namespace>_<container>-<container-id>.log` name (the directory is not
 * checked). The kubelet points these links at the pod log files, so a caller that can read the link should
 * prefer parsePodLogPath(target), which also gives the uid needed to find the pod's metadata.
 */
export function parseContainerLinkName(path: string): ContainerLinkRef | undefined {
  const slash = path.lastIndexOf('/');
  const match = LINK_FILE.exec(path.slice(slash + 1));
  if (match === null) return undefined;
  const [, podName, namespace, container, containerId] = match as unknown as [
    string,
    string,
    string,
    string,
    string,
  ];
  if (!DNS1123_SUBDOMAIN.test(podName) || !DNS1123_LABEL.test(namespace) || !DNS1123_LABEL.test(container)) {
    return undefined;
  }
  return { namespace, podName, container, containerId };
}
