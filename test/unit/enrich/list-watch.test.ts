import { ApiException } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { accessProblem, describeError, errorStatus } from '../../../src/enrich/list-watch.ts';

const unauthorized = new ApiException(
  401,
  'Unknown API Status Code!',
  '{"kind":"Status","message":"Unauthorized","code":401}',
  {},
);
const watchError = Object.assign(new Error('Gone'), { statusCode: 410 });
const refused = new TypeError('fetch failed', {
  cause: Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' }),
});

describe('errorStatus', () => {
  it.each<[string, unknown, number | undefined]>([
    ['ApiException', unauthorized, 401],
    ['watch error', watchError, 410],
    ['Status object', { kind: 'Status', code: 410 }, 410],
    ['network error', refused, undefined],
    ['not an object', 'boom', undefined],
  ])('%s', (_name, err, expected) => {
    expect(errorStatus(err)).toBe(expected);
  });
});

describe('describeError', () => {
  it.each<[string, unknown, string]>([
    ['ApiException: the Status message, not the header dump', unauthorized, 'HTTP 401: Unauthorized'],
    ['watch error', watchError, 'HTTP 410: Gone'],
    ['network error with its cause', refused, 'fetch failed (connect ECONNREFUSED 127.0.0.1:1)'],
    ['a string', 'boom', 'boom'],
  ])('%s', (_name, err, expected) => {
    expect(describeError(err)).toBe(expected);
  });
});

describe('accessProblem', () => {
  // the body kube-apiserver v1.34.4 sends a ServiceAccount whose ClusterRole lacks `watch` on pods
  const forbidden = new ApiException(
    403,
    'Unknown API Status Code!',
    JSON.stringify({
      kind: 'Status',
      status: 'Failure',
      message:
        'pods is forbidden: User "system:serviceaccount:logferry:logferry" cannot watch resource "pods" in API group "" at the cluster scope',
      reason: 'Forbidden',
      details: { kind: 'pods' },
      code: 403,
    }),
    {},
  );
  it.each<[string, unknown, 'list' | 'watch', string | undefined]>([
    [
      '403: names RBAC, the verb, the resource and the fix',
      forbidden,
      'watch',
      'RBAC forbids the agent to watch pods (HTTP 403: pods is forbidden: User "system:serviceaccount:logferry:logferry" cannot watch resource "pods" in API group "" at the cluster scope): its ClusterRole needs get, list and watch on pods (see k8s/rbac.yaml)',
    ],
    [
      '401: the token, before RBAC',
      unauthorized,
      'list',
      "the API refused the agent's credentials (HTTP 401: Unauthorized), before any RBAC check: the bearer token (the service account token file in a pod, else the kubeconfig's user) is missing, invalid or expired",
    ],
    ['410 is not an access problem', watchError, 'watch', undefined],
    ['a network error is not', refused, 'list', undefined],
  ])('%s', (_name, err, verb, expected) => {
    expect(accessProblem(err, verb, 'pods')).toBe(expected);
  });
});
