import { join } from 'node:path';
import { DaemonSet } from 'kubernetes-models/apps/v1';
import { ClusterRole, ClusterRoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1';
import { ConfigMap, Namespace, Secret, Service, ServiceAccount } from 'kubernetes-models/v1';
import { type K8sObject, ROOT } from './k8s-files.ts';
import { undeclaredFields } from './strict-fields.ts';

/**
 * How a rendered object is held to the Kubernetes API, for k8s/ and the Helm chart alike: the OpenAPI
 * schema of kubernetes-models (types, enums, required fields), then every field the API does not declare
 * (strict-fields.ts), since validate() lets unknown fields through and Kubernetes would drop them.
 */

interface Model {
  validate(): void;
}

/** Every built-in kind the deployment may contain, by apiVersion/kind; a new kind must be added here. */
export const MODELS: Record<string, new (data: never) => Model> = {
  'v1/Namespace': Namespace,
  'v1/ServiceAccount': ServiceAccount,
  'v1/Service': Service,
  'v1/Secret': Secret,
  'v1/ConfigMap': ConfigMap,
  'apps/v1/DaemonSet': DaemonSet,
  'rbac.authorization.k8s.io/v1/ClusterRole': ClusterRole,
  'rbac.authorization.k8s.io/v1/ClusterRoleBinding': ClusterRoleBinding,
};

/** Custom resources: no OpenAPI schema here, checked structurally by the tests. */
export const CUSTOM_KINDS = new Set(['monitoring.coreos.com/v1/ServiceMonitor']);

export const CLUSTER_SCOPED = new Set(['Namespace', 'ClusterRole', 'ClusterRoleBinding']);

export function typeKey(o: K8sObject): string {
  return `${o.apiVersion}/${o.kind}`;
}

export function declarationFile(o: K8sObject): string {
  return join(ROOT, 'node_modules', 'kubernetes-models', o.apiVersion, `${o.kind}.d.ts`);
}

export function isKnownKind(o: K8sObject): boolean {
  return MODELS[typeKey(o)] !== undefined || CUSTOM_KINDS.has(typeKey(o));
}

/** The schema's complaint about a built-in object, or undefined when it validates (or is a custom kind). */
export function schemaError(o: K8sObject): string | undefined {
  const Model = MODELS[typeKey(o)];
  if (Model === undefined) return undefined;
  try {
    new Model(o as never).validate();
    return undefined;
  } catch (err) {
    return String(err);
  }
}

/** Fields of a built-in object that the Kubernetes API does not declare. */
export function unknownFields(o: K8sObject): string[] {
  return MODELS[typeKey(o)] === undefined ? [] : undeclaredFields(o, declarationFile(o));
}
