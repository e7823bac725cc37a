import { defineConformanceSuite, type ConformanceTarget } from "../conformance/suite.js";
import { defineEscapeSuite } from "../security/escape-suite.js";
import { NamespaceBackend } from "../../src/sandbox/namespace/backend.js";
import { parseConfig } from "../../src/config/load.js";
import { toSandboxSpec } from "../../src/config/schema.js";
import { announceSkip, namespaceSkipReason } from "../helpers/capabilities.js";
import { namespaceLeftovers } from "../helpers/leftovers.js";

const skip = namespaceSkipReason();
announceSkip("namespace backend", skip);

const target: ConformanceTarget = {
  name: "namespace",
  skip,
  backend: () => new NamespaceBackend(),
  spec: toSandboxSpec(parseConfig({ sandbox: { limits: { memory: "256M", pids: 64 } } }).sandbox),
  leftovers: namespaceLeftovers,
};

defineConformanceSuite(target);
defineEscapeSuite(target);
