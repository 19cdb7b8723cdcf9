import { Stack } from 'aws-cdk-lib';
import * as ssm from 'aws-cdk-lib/aws-ssm';
import { Construct } from 'constructs';
import { DOCUMENTS, type DocumentKey } from '../../adapters/ssm/documents';

/**
 * The SSM Command documents, created from their single definition in
 * adapters/ssm/documents (the local Run Command endpoint and the tests read the same
 * objects). CloudFormation names them (a changed document gets a new name, and the
 * functions get the new name through SSM_DOCUMENT_NAMES in the same deployment).
 */
export class SsmDocuments extends Construct {
  /** Physical name per logical key (a CloudFormation token). */
  readonly names: Record<DocumentKey, string>;

  constructor(scope: Construct, id: string) {
    super(scope, id);
    const names: Partial<Record<DocumentKey, string>> = {};
    for (const key of Object.keys(DOCUMENTS) as DocumentKey[]) {
      const doc = new ssm.CfnDocument(this, key, {
        documentType: 'Command',
        documentFormat: 'JSON',
        content: DOCUMENTS[key].content,
        updateMethod: 'Replace',
        tags: [{ key: 'cc1:document', value: DOCUMENTS[key].name }],
      });
      names[key] = doc.ref;
    }
    this.names = names as Record<DocumentKey, string>;
  }

  /** `arn:aws:ssm:<region>:<account>:document/<name>` of each given document. */
  arns(keys: readonly DocumentKey[]): string[] {
    const stack = Stack.of(this);
    return keys.map((k) => stack.formatArn({ service: 'ssm', resource: 'document', resourceName: this.names[k] }));
  }

  /** The JSON map for the SSM_DOCUMENT_NAMES environment variable. */
  namesJson(keys: readonly DocumentKey[]): string {
    const stack = Stack.of(this);
    return stack.toJsonString(Object.fromEntries(keys.map((k) => [k, this.names[k]])));
  }
}
