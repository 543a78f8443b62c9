/**
 * The CIBA client's contract is a port of the payment use cases (src/payments/ports.ts); this module
 * names the parts the CIBA layer implements, so `src/ciba` reads them from one place.
 */
export {
  BackchannelError,
  type BackchannelFailureCode,
  type BackchannelRequestInput,
  type BackchannelStarted,
  type CibaClient,
  type PaymentInitiationDetail,
  type ReceivedTokenResponse,
  type TokenExpectation,
  type TokenFailureCode,
  type TokenOutcome,
} from '../payments/ports.js';
