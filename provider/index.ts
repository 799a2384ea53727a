/**
 * `kiln/provider`: the AppDeployment resource and the pure pieces around it (state, diff, hashes),
 * which the components and the CLI share.
 */
export { AppDeployment, appDeploymentProvider, type AppDeploymentArgs } from "./app-deployment.js";
export {
  APP_DEPLOYMENT_TYPE,
  agentSpec,
  inputProblems,
  validateInputs,
  type AppDeploymentInputs,
  type AppDeploymentOutputs,
  type SecretValues,
} from "./state.js";
export {
  diffApps,
  formatAppDiff,
  showValue,
  viewOfInputs,
  SECRET,
  type AppDiff,
  type AppView,
  type EntryChange,
  type FieldChange,
  type FunctionView,
} from "./diff.js";
export { appSpecHash, functionSpecHash, usedBundles } from "./hash.js";
